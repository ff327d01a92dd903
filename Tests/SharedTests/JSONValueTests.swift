import Testing
@testable import Shared

@Suite struct JSONValueTests {
    @Test func roundTripsAndDistinguishesIntegersFromDoubles() throws {
        let v = try JSONValue.parse(#"{"a":1,"b":1.5,"c":[true,null,"x"],"d":{}}"#)
        #expect(v["a"] == .int(1))
        #expect(v["b"] == .double(1.5))
        #expect(v["c"] == [true, .null, "x"])
        #expect(v.jsonString() == #"{"a":1,"b":1.5,"c":[true,null,"x"],"d":{}}"#)
    }

    @Test func mergePatchFollowsRFC7386() throws {
        let base: JSONValue = ["a": "b", "c": ["d": "e", "f": "g"]]
        let patch: JSONValue = ["a": "z", "c": ["f": .null]]
        #expect(base.merging(patch: patch) == ["a": "z", "c": ["d": "e"]])
    }
}
