import Foundation
import Testing
@testable import ChillServer

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// chill-server (process backend, vllm-sim as the model, `E2E.model`) for the bad-input tests. After
/// every test body the server must still answer /health: no bad input may crash or wedge it.
enum BadInput {
    static func withChill(extra: [String] = [], sim: [String] = [], _ body: (E2EChill) async throws -> Void) async throws {
        let simPort = try VLLMSim.freePort()
        let command = try E2E.simCommand(port: simPort, extra: ["--quiet"] + sim)
        let chill = try await E2EChill.start(
            ["--backend", "process", "--command", command, "--target-port", String(simPort), "--idle-timeout", "5m",
             "--wake-timeout", "30s", "--served-model-name", E2E.model] + extra)
        do {
            try await body(chill)
            let health = try await chill.request("GET", "/health", timeout: 10)
            #expect(health.status == 200, "chill-server no longer healthy after the bad input: \(health)")
        } catch {
            print("chill-server backend log:\n\(chill.log)")
            await chill.stop()
            throw error
        }
        await chill.stop()
    }

    /// A POST with `body` (sent as is, with its Content-Length).
    static func post(_ chill: E2EChill, _ path: String = "/v1/chat/completions", bytes: [UInt8], headers: [String] = []) async throws -> E2EHTTP.Response {
        try await raw(chill, Array("POST \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: \(bytes.count)\r\n".utf8)
            + headers.flatMap { Array("\($0)\r\n".utf8) } + Array("\r\n".utf8) + bytes)
    }

    static func post(_ chill: E2EChill, _ body: String, path: String = "/v1/chat/completions") async throws -> E2EHTTP.Response {
        try await post(chill, path, bytes: Array(body.utf8))
    }

    /// Sends `bytes` as they are on a fresh connection and reads one response.
    static func raw(_ chill: E2EChill, _ bytes: [UInt8], method: String = "POST", timeout: Double = 20) async throws -> E2EHTTP.Response {
        try await E2EHTTP.onThread {
            let connection = try E2EHTTP.Connection.open(port: chill.port, timeout: timeout)
            defer { connection.close() }
            try connection.sendRaw(bytes)
            return try connection.readResponse(method: method)
        }
    }

    /// Asserts an OpenAI-shaped error answer.
    static func expectError(_ response: E2EHTTP.Response, status: Int, type: String, code: String,
                            messageContains: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(response.status == status, "\(response)", sourceLocation: sourceLocation)
        #expect(response.header("content-type") == "application/json", sourceLocation: sourceLocation)
        let error = try response.openAIError()
        #expect(error.type == type, "\(response)", sourceLocation: sourceLocation)
        #expect(error.code == code, "\(response)", sourceLocation: sourceLocation)
        if let messageContains { #expect(error.message.contains(messageContains), "\(error.message)", sourceLocation: sourceLocation) }
    }
}

extension E2EHTTP.Connection {
    /// Writes `bytes` exactly (no framing added). Throws when the peer reset the connection.
    func sendRaw(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw E2EHTTP.Failure.socket("send", errno)
            }
            sent += n
        }
    }
}
