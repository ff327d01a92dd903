import Shared

extension KubeStore {
    /// The `OwnerReferencesPermissionEnforcement` admission plugin (on in kube-apiserver by default):
    /// setting `blockOwnerDeletion: true` on an owner reference, new or changed, needs `update` on the
    /// owner's `finalizers` subresource; otherwise 403 (approximately the real text). Only requests
    /// with an authorizer installed are checked; controllers' own writes are not.
    func checkBlockOwnerDeletion(_ rt: ResourceType, old: JSONValue?, new: JSONValue, name: String, namespace: String?) throws(APIError) {
        guard let authorizer, let user = requestUser else { return }
        let before = Set((old?["metadata"]?["ownerReferences"]?.arrayValue ?? []).filter { $0["blockOwnerDeletion"]?.boolValue == true })
        for reference in new["metadata"]?["ownerReferences"]?.arrayValue ?? [] where reference["blockOwnerDeletion"]?.boolValue == true {
            guard !before.contains(reference), let kind = reference["kind"]?.stringValue, let apiVersion = reference["apiVersion"]?.stringValue,
                  let ownerType = findType(kind: kind, apiVersion: apiVersion) else { continue }
            let attributes = AuthorizationAttributes(verb: "update", group: ownerType.group, resource: ownerType.plural, subresource: "finalizers",
                                                     namespace: ownerType.namespaced ? namespace : nil, name: reference["name"]?.stringValue)
            if authorizer(user, attributes) { continue }
            let qualified = rt.group.isEmpty ? rt.plural : "\(rt.plural).\(rt.group)"
            let scope = attributes.namespace.map { "in the namespace \"\($0)\"" } ?? "at the cluster scope"
            throw APIError.status(
                code: 403, reason: "Forbidden",
                message: "\(qualified) \"\(name)\" is forbidden: cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on: "
                    + "User \"\(user.name)\" cannot update resource \"\(ownerType.plural)/finalizers\" in API group \"\(ownerType.group)\" \(scope)",
                details: .object(["name": .string(name), "kind": .string(rt.plural)] .merging(rt.group.isEmpty ? [:] : ["group": .string(rt.group)]) { a, _ in a }))
        }
    }
}
