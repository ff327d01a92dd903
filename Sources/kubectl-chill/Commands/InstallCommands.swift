import ArgumentParser

/// The commands that set chill up in a cluster (install, uninstall, manifests).
enum InstallCommands {
    static let all: [any ParsableCommand.Type] = []
}
