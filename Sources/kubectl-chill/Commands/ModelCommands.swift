import ArgumentParser

/// The commands that look at and act on models (list, status, switch, wait, start, stop, create, delete, import, completion).
enum ModelCommands {
    static let all: [any ParsableCommand.Type] = []
}
