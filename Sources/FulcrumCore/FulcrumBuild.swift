/// Facts about this build of Fulcrum.
public enum FulcrumBuild {
    /// The release version (`fulcrum --version`, the `fulcrum_build_info` metric).
    public static let version = "0.4.0"
}
