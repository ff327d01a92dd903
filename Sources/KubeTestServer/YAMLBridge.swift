import Foundation
import Shared

/// apply-patch+yaml bodies that are not JSON go through Shared's YAML decoder.
enum YAMLBridge {
    static func decode(_ data: Data) -> JSONValue? {
        try? YAML.decode(String(decoding: data, as: UTF8.self))
    }
}
