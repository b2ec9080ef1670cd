import CLinux
import LinuxSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// PID 1 of the Proxenos dom0: boots the system, supervises the services,
/// reaps orphans and powers off. It never traps and never returns: a failing
/// step is reported on the console and boot goes on where it can.
public final class InitProcess {
    /// What the busybox halt/poweroff/reboot applets (and the kernel on
    /// Ctrl-Alt-Del) ask PID 1 for, by signal.
    enum PowerAction: String {
        case powerOff = "power off"
        case reboot = "reboot"
        case halt = "halt"

        init?(signal: Int32) {
            switch signal {
            case SIGUSR2: self = .powerOff
            case SIGTERM, SIGINT: self = .reboot
            case SIGUSR1: self = .halt
            default: return nil
            }
        }

        var rebootCommand: Int32 {
            switch self {
            case .powerOff: return CLINUX_REBOOT_CMD_POWER_OFF
            case .reboot: return CLINUX_REBOOT_CMD_RESTART
            case .halt: return CLINUX_REBOOT_CMD_HALT
            }
        }
    }

    private let epoch = ContinuousClock.now
    /// When PID 1's code started (CLOCK_BOOTTIME, the clock of
    /// /proc/uptime, readable before /proc is mounted): for the debug trace.
    private let startedAt = InitProcess.bootClock()
    private var configuration = InitConfiguration()
    private var commandLine = KernelCommandLine("")
    private var supervisor = Supervisor(services: [])
    private var signalDescriptor: Int32 = -1
    private var bootSteps: [BootStep]
    private var bootComplete = false
    private var consoleDevice = "/dev/console"

    /// A step run once, as soon as what it waits for is there (the dom0
    /// xenstore entries once xenstored listens, the network-script once the
    /// network drivers are loaded).
    public struct BootStep: Sendable {
        /// What a step waits for.
        public enum Trigger: Sendable, Equatable, CustomStringConvertible {
            /// The named service runs and is ready.
            case ready(String)
            /// Every kernel module of the boot list is loaded (the network
            /// drivers load in the background while services start).
            case modulesLoaded
            /// The named boot step has ended (whether it succeeded or not:
            /// a failed step is reported, and boot goes on).
            case stepDone(String)

            public var description: String {
                switch self {
                case .ready(let service): return "\(service) ready"
                case .modulesLoaded: return "modules loaded"
                case .stepDone(let step): return "\(step) done"
                }
            }
        }

        /// How a step runs.
        public enum Action: Sendable {
            /// In PID 1, to completion: for short steps that cannot fault.
            case inProcess(@Sendable () throws -> Void)
            /// In its own process with its output in `log`, so a fault cannot
            /// take PID 1 down; PID 1 goes on supervising while it runs and
            /// kills it after `timeout`.
            case program(argv: [String], log: String, timeout: Duration)
        }

        public var name: String
        public var after: Trigger
        public var action: Action
        /// A kernel command-line key (`proxenos.config`) the step is for:
        /// without it the step is skipped, costing the boot nothing, and
        /// counts as done for the steps after it.
        public var onlyWith: String?
        /// Whether the ready banner waits for the step (dom0's DHCP lease
        /// does not hold it: the console says when the lease comes).
        public var holdsBanner: Bool

        public init(
            name: String, after: Trigger, action: Action, onlyWith: String? = nil,
            holdsBanner: Bool = true
        ) {
            self.name = name
            self.after = after
            self.action = action
            self.onlyWith = onlyWith
            self.holdsBanner = holdsBanner
        }

        /// A step run in PID 1.
        public init(name: String, after: Trigger, run: @escaping @Sendable () throws -> Void) {
            self.init(name: name, after: after, action: .inProcess(run))
        }
    }

    /// A program step that is running.
    private struct RunningStep {
        var name: String
        var holdsBanner: Bool
        var command: String
        var log: String
        var timeout: Duration
        var deadline: Duration
    }

    /// A program run first on poweroff, reboot or halt, while every
    /// service still runs (xm asking xend to shut the guests down).
    public struct ShutdownStep: Sendable {
        /// Its argv and how long it may run, decided at shutdown time: its
        /// configuration may have changed since boot.
        public struct Plan: Sendable, Equatable {
            public var argv: [String]
            public var timeout: Duration
            /// Said on the console before it runs.
            public var announcement: String

            public init(argv: [String], timeout: Duration, announcement: String) {
                self.argv = argv
                self.timeout = timeout
                self.announcement = announcement
            }
        }

        public var name: String
        /// Runs only while this service runs (nobody to ask otherwise).
        public var needs: String
        public var plan: @Sendable () -> Plan

        public init(name: String, needs: String, plan: @escaping @Sendable () -> Plan) {
            self.name = name
            self.needs = needs
            self.plan = plan
        }
    }

    private var runningSteps: [pid_t: RunningStep] = [:]
    /// Steps that have ended, for `.stepDone` triggers.
    private var endedSteps: Set<String> = []
    private let modules = BackgroundModules()
    private let randomness = KernelRandomness()
    private let shutdownSteps: [ShutdownStep]

    public init(bootSteps: [BootStep], shutdownSteps: [ShutdownStep] = []) {
        self.bootSteps = bootSteps
        self.shutdownSteps = shutdownSteps
    }

    private var now: Duration { ContinuousClock.now - epoch }

    /// Runs PID 1.
    public func run() -> Never {
        // Signals are handled through a signalfd, so block them first: a
        // SIGCHLD or a poweroff request during boot waits, it is not lost.
        _ = clinux_block_all_signals()
        bootstrap()
        startSupervision()
        loop()
    }

    // MARK: boot

    private func bootstrap() {
        for spec in SystemLayout.earlyMounts {
            report("mount \(spec.target)") { () throws(Errno) in try Mounts.mount(spec) }
        }
        commandLine = KernelCommandLine(Files.readIfPresent("/proc/cmdline") ?? "")
        configuration = InitConfiguration(commandLine: commandLine)
        for warning in configuration.warnings { Console.say(warning) }
        consoleDevice = "/dev/" + (configuration.console ?? Self.activeConsole() ?? "console")

        trace("PID 1 started at \(Banner.twoDecimals(startedAt)) s; mounted, command line read")
        let debug = configuration.debug
        randomness.waitInBackground { Self.trace("kernel random numbers ready", if: debug) }
        loadModules()
        for spec in SystemLayout.xenMounts {
            report("mount \(spec.target)") { () throws(Errno) in try Mounts.mount(spec) }
        }
        for directory in SystemLayout.directories {
            report("create \(directory)") { () throws(Errno) in
                try Files.makeDirectories(directory)
            }
        }
        for spec in SystemLayout.logMounts {
            report("mount \(spec.target)") { () throws(Errno) in try Mounts.mount(spec) }
        }
        for link in SystemLayout.symlinks {
            report("link \(link.path)") { () throws(Errno) in
                try Files.symlinkIfMissing(target: link.target, at: link.path)
            }
        }
        setHostname()
        report("bring up lo") { () throws(Errno) in
            if clinux_interface_up("lo") != 0 { throw Errno(rawValue: errno) }
        }
        trace("bootstrap done")
    }

    /// With `proxenos.debug`, the dom0 uptime at each boot stage.
    private func trace(_ stage: String) {
        Self.trace(stage, if: configuration.debug)
    }

    /// The trace line itself, also for the module-loading thread.
    private static func trace(_ stage: String, if enabled: Bool) {
        guard enabled else { return }
        Console.say("[\(Banner.uptime().map(Banner.twoDecimals) ?? "?") s] \(stage)")
    }

    static func bootClock() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_BOOTTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// The tty behind /dev/console: the last entry of the kernel's list.
    static func activeConsole() -> String? {
        guard let text = Files.readIfPresent("/sys/class/tty/console/active") else { return nil }
        return text.split(whereSeparator: { $0 == " " || $0 == "\n" }).last.map(String.init)
    }

    /// Loads Xen's device modules now (xenfs and xenstored need them) and
    /// the rest (bridge, tun, NIC drivers, ...) on a background thread, so
    /// that the network drivers' probing overlaps xenstored's start.
    private func loadModules() {
        let release = Self.kernelRelease()
        let base = "/lib/modules/\(release)"
        guard let dep = Files.readIfPresent("\(base)/modules.dep") else {
            Console.say("no \(base)/modules.dep; loading no kernel modules")
            modules.finish()
            return
        }
        let index = ModuleIndex(
            dep: dep, alias: Files.readIfPresent("\(base)/modules.alias") ?? "",
            builtin: Files.readIfPresent("\(base)/modules.builtin") ?? "")
        let listed = (Files.readIfPresent(SystemLayout.moduleListPath) ?? "")
            .split(separator: "\n")
            .map { $0.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0] }
            .map { String($0).trimmingSpaces() }
            .filter { !$0.isEmpty }
        let hardware = Self.presentModaliases().flatMap { index.modules(forModalias: $0) }
        let (paths, unknown) = index.loadOrder(
            for: listed + configuration.extraModules + hardware)
        for name in unknown { Console.say("kernel module \(name) is not in the image") }
        let (early, late) = ModuleIndex.splitXenFirst(paths)
        for path in early { Self.loadReporting("\(base)/\(path)") }
        trace("xen modules loaded")
        let modules = self.modules
        let debug = configuration.debug
        do {
            try Threads.spawn(name: "modules") {
                for path in late { Self.loadReporting("\(base)/\(path)") }
                Self.loadDriversOfNewDevices(index: index, base: base, loaded: paths)
                Self.trace("modules loaded", if: debug)
                modules.finish()
            }
        } catch {
            Console.say("no thread for module loading (\(error)); loading them now")
            for path in late { Self.loadReporting("\(base)/\(path)") }
            Self.loadDriversOfNewDevices(index: index, base: base, loaded: paths)
            modules.finish()
        }
    }

    /// A driver just loaded may have made devices of its own (virtio_pci
    /// puts a virtio-net device on the virtio bus): their drivers load in
    /// a second pass, before the network-script looks for the NIC.
    private static func loadDriversOfNewDevices(index: ModuleIndex, base: String, loaded: [String])
    {
        let hardware = presentModaliases().flatMap { index.modules(forModalias: $0) }
        let done = Set(loaded)
        for path in index.loadOrder(for: hardware).paths where !done.contains(path) {
            loadReporting("\(base)/\(path)")
        }
    }

    private static func loadReporting(_ path: String) {
        do {
            try loadModule(path)
        } catch {
            Console.say("load \(ModuleIndex.name(ofPath: path)) failed: \(error)")
        }
    }

    static func loadModule(_ path: String) throws(Errno) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        defer { close(fd) }
        let result = retryingSyscall { clinux_finit_module(fd, "", 0) }
        // EEXIST: built in or already loaded, which is what we wanted.
        if case .failure(let error) = result, error != .fileExists { throw error }
    }

    /// The modalias of every device on the buses whose drivers we ship.
    static func presentModaliases() -> [String] {
        var aliases: [String] = []
        for bus in ["pci", "virtio", "xen"] {
            let directory = "/sys/bus/\(bus)/devices"
            for device in (try? Files.list(directory)) ?? [] {
                if let alias = Files.readIfPresent("\(directory)/\(device)/modalias") {
                    let trimmed = alias.trimmingSpaces()
                    if !trimmed.isEmpty { aliases.append(trimmed) }
                }
            }
        }
        return aliases
    }

    static func kernelRelease() -> String {
        var names = utsname()
        uname(&names)
        return withUnsafeBytes(of: names.release) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    private func setHostname() {
        let name =
            configuration.hostname
            ?? Files.readIfPresent("/etc/hostname")?.trimmingSpaces() ?? "proxenos"
        guard !name.isEmpty else { return }
        report("set host name \(name)") { () throws(Errno) in
            let result = name.withCString { pointer in
                retryingSyscall { sethostname(pointer, name.utf8.count) }
            }
            if case .failure(let error) = result { throw error }
        }
    }

    // MARK: supervision

    private func startSupervision() {
        let (services, unknown) = ServiceTable.enabled(
            ServiceTable.dom0, disabling: configuration.disabledServices)
        for name in unknown.sorted() { Console.say("proxenos.disable: no service \(name)") }
        for problem in ServiceTable.validate(services) { Console.say(problem) }
        supervisor = Supervisor(services: services)

        let watched: [Int32] = [SIGCHLD, SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP]
        signalDescriptor = watched.withUnsafeBufferPointer {
            clinux_signalfd($0.baseAddress, Int32($0.count))
        }
        if signalDescriptor < 0 {
            Console.say("signalfd failed (\(Errno(rawValue: errno))); polling for children")
        }
        // Ctrl-Alt-Del becomes SIGINT (reboot) instead of an instant reset.
        _ = clinux_reboot(CLINUX_REBOOT_CMD_CAD_OFF)
    }

    private func loop() -> Never {
        while true {
            startDueServices()
            runReadyBootSteps()
            killOverdueSteps()
            checkBootComplete()
            waitForEvents()
        }
    }

    private func isReady(_ spec: ServiceSpec) -> Bool {
        spec.readyPath.map(Files.exists) ?? true
    }

    /// Programs that read the kernel's random numbers as they load start
    /// once those are ready (`KernelRandomness`).
    private func mayStart(_ spec: ServiceSpec) -> Bool {
        !spec.needsRandomness || randomness.isReady
    }

    private func startDueServices() {
        let (names, notices) = supervisor.dueStarts(
            now: now, isReady: isReady, mayStart: mayStart)
        for notice in notices { Console.say(notice) }
        for name in names {
            guard let spec = supervisor.service(named: name)?.spec else { continue }
            spawn(spec)
        }
    }

    private func spawn(_ spec: ServiceSpec) {
        let streams: StandardStreams
        switch spec.streams {
        case .terminal:
            streams = .terminal(consoleDevice)
        default:
            streams = spec.streams
        }
        let process = ProcessSpec(
            path: spec.executable, arguments: spec.argv, environment: SystemLayout.environment,
            streams: streams)
        switch ProcessSpawner.spawn(process) {
        case .success(let pid):
            supervisor.didStart(spec.name, pid: pid, now: now)
            trace("started \(spec.name) (pid \(pid))")
        case .failure(let error):
            let notices = supervisor.didFailToStart(spec.name, error: "\(error)", now: now)
            for notice in notices { Console.say(notice) }
        }
    }

    private func runReadyBootSteps() {
        // Read before removeAll: its closure may not look at bootSteps.
        let pendingNames = Set(bootSteps.map(\.name)).union(runningSteps.values.map(\.name))
        bootSteps.removeAll { step in
            switch step.after {
            case .modulesLoaded:
                guard modules.isFinished else { return false }
            case .stepDone(let name):
                guard endedSteps.contains(name) else {
                    if !pendingNames.contains(name) {
                        Console.say("boot step \(step.name): no step \(name) to wait for; skipped")
                        return true
                    }
                    return false
                }
            case .ready(let name):
                guard let service = supervisor.service(named: name) else {
                    Console.say("boot step \(step.name): service \(name) is not enabled; skipped")
                    return true
                }
                guard case .running = service.phase, isReady(service.spec) else {
                    if service.phase == .gaveUp {
                        Console.say("boot step \(step.name): service \(name) gave up; skipped")
                        return true
                    }
                    return false
                }
            }
            if let key = step.onlyWith, commandLine.value(key) == nil {
                trace("\(step.name) skipped: no \(key) on the kernel command line")
                endedSteps.insert(step.name)
                return true
            }
            // Program steps are ours (`/bin/proxenos`): Swift programs.
            if case .program = step.action, !randomness.isReady { return false }
            start(step)
            return true
        }
    }

    private func start(_ step: BootStep) {
        trace("\(step.after); running \(step.name)")
        switch step.action {
        case .inProcess(let run):
            do {
                try run()
                trace("\(step.name) done")
            } catch {
                Console.say("boot step \(step.name) failed: \(error)")
            }
            endedSteps.insert(step.name)
        case .program(let argv, let log, let timeout):
            let command = argv.joined(separator: " ")
            guard let path = argv.first else {
                Console.say("boot step \(step.name) failed: it names no program")
                endedSteps.insert(step.name)
                return
            }
            let process = ProcessSpec(
                path: path, arguments: argv, environment: SystemLayout.environment,
                streams: .logFile(log))
            switch ProcessSpawner.spawn(process) {
            case .success(let pid):
                runningSteps[pid] = RunningStep(
                    name: step.name, holdsBanner: step.holdsBanner, command: command, log: log,
                    timeout: timeout,
                    deadline: now + timeout)
            case .failure(let error):
                endedSteps.insert(step.name)
                Console.say(
                    "boot step \(step.name) failed: "
                        + "\(BootCommandError.couldNotStart(command, errno: "\(error)"))")
            }
        }
    }

    /// A program step ended: reported if it failed.
    private func finish(_ step: RunningStep, status: ExitStatus) {
        endedSteps.insert(step.name)
        if status.succeeded {
            trace("\(step.name) done")
        } else {
            Console.say(
                "boot step \(step.name) failed: "
                    + "\(BootCommandError.failed(step.command, status, log: step.log))")
        }
    }

    /// Program steps past their deadline are killed (and reaped later).
    private func killOverdueSteps() {
        for (pid, step) in runningSteps where now >= step.deadline {
            kill(pid, SIGKILL)
            runningSteps[pid] = nil
            endedSteps.insert(step.name)
            Console.say(
                "boot step \(step.name) failed: "
                    + "\(BootCommandError.timedOut(step.command, after: step.timeout, log: step.log))"
            )
        }
    }

    private func checkBootComplete() {
        guard !bootComplete, !bootSteps.contains(where: \.holdsBanner),
            !runningSteps.values.contains(where: \.holdsBanner)
        else { return }
        let settled = supervisor.services.allSatisfy { service in
            switch service.phase {
            // A service that never becomes ready must not hold the admin
            // shell back forever: after the readiness timeout it counts as
            // settled (dueStarts has reported it).
            case .running(_, let since):
                return isReady(service.spec) || now - since >= supervisor.readinessTimeout
            case .gaveUp, .stopped: return true
            case .pending, .scheduled: return false
            }
        }
        guard settled else { return }
        bootComplete = true
        Console.writeLine(
            Banner.readyLine(
                uptime: Banner.uptime(),
                initSeconds: Banner.uptime().map { $0 - (Banner.initExecSeconds() ?? startedAt) },
                xen: Banner.xenVersion(), kernel: Self.kernelRelease()))
        if configuration.adminShell {
            supervisor.add(
                ServiceSpec(
                    name: "shell", argv: ["/bin/sh", "-l"], streams: .terminal(consoleDevice),
                    restart: .forever, stopTimeout: .seconds(1), stopSignal: SIGHUP))
        }
    }

    private func waitForEvents() {
        var timeout: Int32 = -1
        if let wakeup = supervisor.nextWakeup(now: now, isReady: isReady, mayStart: mayStart) {
            let milliseconds =
                (wakeup - now).components.seconds * 1000
                + (wakeup - now).components.attoseconds / 1_000_000_000_000_000
            timeout = Int32(clamping: max(0, milliseconds) + 1)
        }
        // Until boot completes, look again soon: a service's ready path
        // (a socket) appears without any signal to wake us.
        if !bootSteps.isEmpty || !bootComplete { timeout = timeout < 0 ? 50 : min(timeout, 50) }
        if signalDescriptor < 0 {
            reapChildren()
            usleep(UInt32(timeout < 0 ? 200_000 : min(Int(timeout), 200) * 1000))
            return
        }
        var descriptor = pollfd(fd: signalDescriptor, events: Int16(POLLIN), revents: 0)
        _ = poll(&descriptor, 1, timeout)
        handleSignals()
    }

    private func handleSignals() {
        while true {
            let signal = clinux_signalfd_read(signalDescriptor)
            if signal <= 0 { return }
            if signal == SIGCHLD {
                reapChildren()
            } else if let action = PowerAction(signal: signal) {
                shutDown(action)
            }
        }
    }

    private func reapChildren() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return }
            if let step = runningSteps.removeValue(forKey: pid) {
                finish(step, status: ExitStatus(waitStatus: status))
                continue
            }
            let loss = supervisor.serviceName(pid: pid).flatMap {
                supervisor.service(named: $0)?.spec.lossOnExit
            }
            let shuttingDown = supervisor.isShuttingDown
            if let notices = supervisor.reap(
                pid: pid, status: ExitStatus(waitStatus: status), now: now)
            {
                for notice in notices { Console.say(notice) }
            }
            if let loss, !shuttingDown { markLoss(loss, status: ExitStatus(waitStatus: status)) }
        }
    }

    /// Leaves the loss marker for the other programs; a failure to write
    /// it is reported, as xend then cannot know.
    private func markLoss(_ loss: ServiceLoss, status: ExitStatus) {
        let uptime = Banner.uptime().map(Banner.twoDecimals) ?? "?"
        let text = ServiceLoss.markerText(uptime: uptime, status: status)
        report("write \(loss.markerPath)") { () throws(Errno) in
            try Files.write(loss.markerPath, text)
        }
    }

    // MARK: shutdown

    private func shutDown(_ action: PowerAction) -> Never {
        for step in shutdownSteps { runShutdownStep(step, action) }
        Console.say("\(action.rawValue): stopping services")
        for service in supervisor.beginShutdown() {
            stop(
                pid: service.pid, name: service.name, signal: service.spec.stopSignal,
                timeout: service.spec.stopTimeout)
        }
        // Whatever is left (sessions, orphans): TERM, a grace period, KILL.
        kill(-1, SIGTERM)
        waitForAllChildren(timeout: .seconds(2))
        kill(-1, SIGKILL)
        waitForAllChildren(timeout: .seconds(1))
        sync()
        for target in Mounts.current().reversed() where target != "/" {
            try? Mounts.detach(target)
        }
        sync()
        Console.say("\(action.rawValue) now")
        _ = clinux_reboot(action.rebootCommand)
        Console.say("reboot(2) failed: \(Errno(rawValue: errno)); halting here")
        while true { pause() }
    }

    /// Runs a shutdown step with the console as its output, to its end or
    /// its deadline (then it is killed and the shutdown goes on).
    private func runShutdownStep(_ step: ShutdownStep, _ action: PowerAction) {
        guard case .running = supervisor.service(named: step.needs)?.phase else {
            Console.say("\(action.rawValue): \(step.needs) is not running; skipping \(step.name)")
            return
        }
        let plan = step.plan()
        guard let path = plan.argv.first else { return }
        Console.say("\(action.rawValue): \(plan.announcement)")
        let process = ProcessSpec(
            path: path, arguments: plan.argv, environment: SystemLayout.environment,
            streams: .inherit)
        switch ProcessSpawner.spawn(process) {
        case .success(let pid):
            awaitExit(of: pid, name: step.name, within: plan.timeout, verb: "end")
        case .failure(let error):
            Console.say("\(action.rawValue): \(step.name) could not start: \(error)")
        }
    }

    private func stop(pid: Int32, name: String, signal: Int32, timeout: Duration) {
        kill(pid, signal)
        awaitExit(of: pid, name: name, within: timeout, verb: "stop")
    }

    /// Reaps child `pid` once it exits, or SIGKILLs it at the deadline
    /// (saying so on the console) and reaps it then: the power-off goes on
    /// either way.
    private func awaitExit(of pid: Int32, name: String, within timeout: Duration, verb: String) {
        let deadline = now + timeout
        while now < deadline {
            var status: Int32 = 0
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid || (reaped < 0 && errno == ECHILD) { return }
            usleep(20_000)
        }
        Console.say("\(name) did not \(verb) within \(format(timeout)); killing it")
        kill(pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }

    private func waitForAllChildren(timeout: Duration) {
        let deadline = now + timeout
        while now < deadline {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid < 0 && errno == ECHILD { return }
            if pid <= 0 { usleep(20_000) }
        }
    }

    // MARK: reporting

    /// Runs a boot action; a failure is reported and boot goes on.
    private func report(_ what: String, _ action: () throws(Errno) -> Void) {
        do {
            try action()
        } catch {
            Console.say("\(what) failed: \(error)")
        }
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs and newlines.
    func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }),
            let last = lastIndex(where: { !isSpace($0) })
        else { return "" }
        return String(self[first...last])
    }
}
