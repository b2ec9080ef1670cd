import Init

/// The boot steps PID 1 runs once their service is ready.
enum Dom0Boot {
    static let steps: [InitProcess.BootStep] = [Dom0Store.bootStep]
}
