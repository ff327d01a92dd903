import ArgumentParser

/// The commands that look at and act on models (list, status, switch, wait, start, stop, create, delete, import, completion).
enum ModelCommands {
    typealias List = KubectlChill.List
    typealias Status = KubectlChill.Status
    typealias Switch = KubectlChill.Switch
    typealias Wait = KubectlChill.Wait
    typealias Start = KubectlChill.Start
    typealias Stop = KubectlChill.Stop
    typealias Create = KubectlChill.Create
    typealias Delete = KubectlChill.Delete
    typealias Import = KubectlChill.Import
    typealias Completion = KubectlChill.Completion

    static let all: [any ParsableCommand.Type] = [
        List.self, Status.self, Switch.self, Wait.self, Start.self, Stop.self, Create.self, Delete.self, Import.self, Completion.self,
    ]
}
