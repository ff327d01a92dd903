/// The one place chill's version is defined; both binaries and the generated manifests read it.
public enum ChillVersion {
    public static let current = "0.1.0"
    /// The chill-server image that `kubectl chill install` deploys unless `--image` says otherwise.
    public static let defaultImage = "ghcr.io/chill-dev/chill-server:\(current)"
}
