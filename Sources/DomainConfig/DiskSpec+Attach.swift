extension DiskSpec {
    /// A disk as `xm block-attach DOMAIN BACKDEV FRONTDEV MODE` names it,
    /// parsed by the same rules as a config's `disk` entry
    /// (`file:/images/b.img`, `xvdb`, `w`).
    public init(attaching backend: String, as frontend: String, mode: String)
        throws(DomainConfigError)
    {
        let text = "\(backend),\(frontend),\(mode)"
        self = try DeviceParser.disk(text, index: 0, origin: .commandLine(argument: text))
    }
}
