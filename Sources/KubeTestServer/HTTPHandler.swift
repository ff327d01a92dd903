import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// Bridges NIO HTTP/1.1 (or an HTTP/2 stream, through the HTTP/1 codec) to `KubeStore.handle`. Requests are handled off the event loop (in the store
/// actor); responses and watch lines hop back onto the channel's event loop.
final class KubeHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let store: KubeStore
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var certUser: KubeUser??
    private var activeWatch: WatchSession?

    init(store: KubeStore) { self.store = store }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body.clear()
        case .body(var b):
            body.writeBuffer(&b)
        case .end:
            guard let head else { return }
            process(context: context, head: head)
            self.head = nil
        }
    }

    /// The client certificates the test CA signed (the TLS layer accepts any certificate; TLS itself proves the
    /// client holds the key, so presenting one of these exact certificates is as good as a chain check).
    static let trustedClientCertificates: [[UInt8]] = [TestPKI.clientCertificate].compactMap {
        try? NIOSSLCertificate(bytes: Array($0.utf8), format: .pem).toDERBytes()
    }

    /// Whether the peer presented a certificate the server does not trust.
    private var untrustedCertificate = false

    private func clientCertificateUser(context: ChannelHandlerContext) -> KubeUser? {
        if let cached = certUser { return cached }
        // On an HTTP/2 stream the TLS handler sits on the parent (connection) channel, on the same event loop.
        var cert = (try? context.pipeline.syncOperations.nioSSL_peerCertificate())
            ?? (try? context.channel.parent?.pipeline.syncOperations.nioSSL_peerCertificate())
        if let der = try? cert?.toDERBytes(), !Self.trustedClientCertificates.contains(der) {
            untrustedCertificate = true
            cert = nil
        }
        let user = cert.flatMap { try? $0.toDERBytes() }.flatMap(CertificateSubject.init(der:)).flatMap { s -> KubeUser? in
            guard let cn = s.commonName else { return nil }
            return KubeUser(name: cn, groups: s.organizations + ["system:authenticated"])
        }
        certUser = .some(user)
        return user
    }

    private func process(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let req = IncomingRequest(method: head.method.rawValue, target: head.uri,
                                  headers: head.headers.map { ($0.name, $0.value) },
                                  body: Data(body.readableBytesView), presetUser: clientCertificateUser(context: context),
                                  untrustedCertificate: untrustedCertificate)
        let keepAlive = head.isKeepAlive
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let store = self.store
        Task {
            let outcome = await store.handle(req)
            loop.execute {
                let (handler, ctx) = bound.value
                handler.finish(outcome, keepAlive: keepAlive, isHead: req.method == "HEAD", context: ctx)
            }
        }
    }

    private func baseHeaders() -> HTTPHeaders {
        var h = HTTPHeaders()
        h.add(name: "Audit-Id", value: UUID().uuidString.lowercased())
        h.add(name: "Cache-Control", value: "no-cache, private")
        return h
    }

    private func finish(_ outcome: Outcome, keepAlive: Bool, isHead: Bool, context: ChannelHandlerContext) {
        switch outcome {
        case .response(let r):
            var h = baseHeaders()
            for (k, v) in r.headers { h.add(name: k, value: v) }
            h.add(name: "Content-Length", value: String(r.body.count))
            if !keepAlive { h.add(name: "Connection", value: "close") }
            let status = HTTPResponseStatus(statusCode: r.status)
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: h))), promise: nil)
            if !isHead { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: r.body)))), promise: nil) }
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !keepAlive {
                let channel = context.channel
                done.whenComplete { _ in channel.close(promise: nil) }
            }
        case .watch(let session):
            var h = baseHeaders()
            h.add(name: "Content-Type", value: "application/json")
            h.add(name: "Transfer-Encoding", value: "chunked")
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: h))), promise: nil)
            activeWatch = session
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            session.attach { output in
                loop.execute {
                    let (handler, ctx) = bound.value
                    handler.writeWatch(output, keepAlive: keepAlive, context: ctx)
                }
            }
        }
    }

    private func writeWatch(_ output: WatchSession.Output, keepAlive: Bool, context: ChannelHandlerContext) {
        guard activeWatch != nil else { return }
        switch output {
        case .line(let d):
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: d)))), promise: nil)
        case .end:
            activeWatch = nil
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !keepAlive {
                let channel = context.channel
                done.whenComplete { _ in channel.close(promise: nil) }
            }
        case .abort:
            activeWatch = nil
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        activeWatch?.clientClosed()
        activeWatch = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// The subject CN and O values of an X.509 certificate (a minimal DER walk).
struct CertificateSubject {
    var commonName: String?
    var organizations: [String] = []

    init?(der: [UInt8]) {
        var r = DERReader(bytes: der[...])
        guard var cert = r.readElement(tag: 0x30)?.contents,
              var tbs = cert.readElement(tag: 0x30)?.contents else { return nil }
        if tbs.peekTag() == 0xA0 { _ = tbs.readAny() }  // version
        _ = tbs.readAny()  // serialNumber
        _ = tbs.readAny()  // signature
        _ = tbs.readAny()  // issuer
        _ = tbs.readAny()  // validity
        guard var subject = tbs.readElement(tag: 0x30)?.contents else { return nil }
        while var set = subject.readElement(tag: 0x31)?.contents {
            while var atv = set.readElement(tag: 0x30)?.contents {
                guard let oid = atv.readElement(tag: 0x06)?.contents.bytes, let value = atv.readAny()?.contents.bytes else { continue }
                let s = String(decoding: value, as: UTF8.self)
                if Array(oid) == [0x55, 0x04, 0x03] { commonName = s }
                if Array(oid) == [0x55, 0x04, 0x0A] { organizations.append(s) }
            }
        }
    }
}

struct DERReader {
    var bytes: ArraySlice<UInt8>

    func peekTag() -> UInt8? { bytes.first }

    mutating func readAny() -> (tag: UInt8, contents: DERReader)? {
        guard bytes.count >= 2 else { return nil }
        let tag = bytes[bytes.startIndex]
        var i = bytes.startIndex + 1
        var len = Int(bytes[i]); i += 1
        if len & 0x80 != 0 {
            let n = len & 0x7F
            guard n <= 4, bytes.endIndex - i >= n else { return nil }
            len = 0
            for _ in 0..<n { len = len << 8 | Int(bytes[i]); i += 1 }
        }
        guard bytes.endIndex - i >= len else { return nil }
        let contents = DERReader(bytes: bytes[i..<(i + len)])
        bytes = bytes[(i + len)...]
        return (tag, contents)
    }

    mutating func readElement(tag: UInt8) -> (tag: UInt8, contents: DERReader)? {
        guard peekTag() == tag else { return nil }
        return readAny()
    }
}
