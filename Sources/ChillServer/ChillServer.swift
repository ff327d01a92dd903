import ArgumentParser
import Shared

@main
struct ChillServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chill-server",
        abstract: "The chill proxy: scale-to-zero and wake-on-request in front of vLLM.",
        version: ChillVersion.current
    )

    func run() async throws {
        print("chill-server \(ChillVersion.current): the proxy arrives with the chill-server issue.")
    }
}
