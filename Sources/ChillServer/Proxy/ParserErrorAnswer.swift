import NIOCore
import NIOHTTP1

extension OpenAIError {
    /// The answer to a request the HTTP parser rejects, in the OpenAI error shape: 431 when the
    /// headers exceed the decoder's limits (80 KB), 400 for anything else that is not HTTP/1.x.
    /// (NIO's `HTTPServerProtocolErrorHandler` answers an empty 400 for all.) `ProxyHandler` writes
    /// it when no other response is being written, in its turn after pipelined ones, then closes.
    static func forParserError(_ error: HTTPParserError) -> OpenAIError {
        switch error {
        case .headerOverflow: OpenAIError.headersTooLarge
        default: OpenAIError.unparsableRequest("\(error)")
        }
    }
}
