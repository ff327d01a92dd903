import Shared

/// A failure the user can act on: printed as one line, `error: <what> — <hint>`, exit 1.
struct CLIError: Error, CustomStringConvertible {
    var message: String
    var hint: String?

    init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }

    var description: String { hint.map { "\(message) — \($0)" } ?? message }

    /// Turns client errors into one actionable line.
    static func from(_ error: any Error, context: String?, server: String) -> CLIError {
        if let error = error as? CLIError { return error }
        if let error = error as? KubeConfigError { return CLIError(error.description) }
        if let error = error as? KubeError {
            if let transport = error.transport {
                return CLIError(
                    "no cluster reachable at \(server): \(transport.detail)",
                    hint: "check your kubeconfig context (current: \(context ?? "in-cluster"))")
            }
            switch error.code {
            case 401: return CLIError("the cluster rejected the credentials (401 Unauthorized)", hint: "log in again or refresh your kubeconfig (context: \(context ?? "in-cluster"))")
            case 403: return CLIError(error.message, hint: "ask a cluster admin for the rights, or use another --context")
            default: return CLIError(error.message)
            }
        }
        return CLIError("\(error)")
    }
}
