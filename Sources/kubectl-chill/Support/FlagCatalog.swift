import ArgumentParser
import Shared

/// A command's flags and the values of its enumerated options, for `completion __kubectl`: read from
/// ArgumentParser's own description of the command (`--experimental-dump-help`), so they cannot drift.
enum FlagCatalog {
    /// `--output`, `-o`, `--wait`, … of `command`, as typed.
    static func flags(_ command: String) -> [String] {
        arguments(command).filter { $0["kind"] != "positional" && $0["shouldDisplay"] != false }.flatMap { argument in
            (argument["names"]?.arrayValue ?? []).compactMap { name -> String? in
                guard let text = name["name"]?.stringValue else { return nil }
                return name["kind"] == "short" ? "-" + text : "--" + text
            }
        }.filter { $0 != "--version" }.sorted()
    }

    /// The values an option (given as typed, e.g. `-o`) accepts, or [] when it takes any value.
    static func values(of flag: String, _ command: String) -> [String] {
        let name = String(flag.drop { $0 == "-" })
        let argument = arguments(command).first { argument in
            (argument["names"]?.arrayValue ?? []).contains { $0["name"]?.stringValue == name }
        }
        return argument?["allValues"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    static func arguments(_ command: String) -> [JSONValue] {
        do {
            _ = try KubectlChill.parseAsRoot([command, "--experimental-dump-help"])
            return []
        } catch {
            let description = try? JSONValue.parse(KubectlChill.fullMessage(for: error))
            return description?[path: "command", "arguments"]?.arrayValue ?? []
        }
    }
}
