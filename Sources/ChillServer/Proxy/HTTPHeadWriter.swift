import NIOCore
import NIOHTTP1

/// Serializes the HTTP/1.1 heads chill writes itself (requests to the backend, its own answers):
/// the relay has no HTTP encoder in either pipeline. Values come from a parsed request or from chill,
/// so they hold no CR or LF.
enum HTTPHeadWriter {
    static func write(_ head: HTTPRequestHead, into out: inout ByteBuffer) {
        out.writeString(head.method.rawValue)
        out.writeStaticString(" ")
        out.writeString(head.uri)
        out.writeStaticString(head.version == .http1_0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n")
        writeHeaders(head.headers, into: &out)
    }

    static func writeResponse(version: HTTPVersion, status: HTTPResponseStatus, headers: HTTPHeaders, into out: inout ByteBuffer) {
        out.writeStaticString(version == .http1_0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        out.writeString(String(status.code))
        out.writeStaticString(" ")
        out.writeString(status.reasonPhrase)
        out.writeStaticString("\r\n")
        writeHeaders(headers, into: &out)
    }

    /// `hex-size CRLF`, the line before a chunk's data.
    static func writeChunkHeader(_ size: Int, into out: inout ByteBuffer) {
        out.writeString(String(size, radix: 16))
        out.writeStaticString("\r\n")
    }

    private static func writeHeaders(_ headers: HTTPHeaders, into out: inout ByteBuffer) {
        for (name, value) in headers {
            out.writeString(name)
            out.writeStaticString(": ")
            out.writeString(value)
            out.writeStaticString("\r\n")
        }
        out.writeStaticString("\r\n")
    }
}
