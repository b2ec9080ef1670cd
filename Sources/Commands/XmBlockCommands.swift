import ArgumentParser
import DomainConfig
import Toolstack

/// `xm block-attach`, `block-detach`, `block-list`: disks of a running
/// domain, with xm's arguments.
extension XmCommand {
    struct BlockAttach: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "block-attach",
            abstract: "Add a disk to a running domain.",
            discussion: """
                BackDev, FrontDev and Mode as in a config's disk entry: \
                xm block-attach demo file:/srv/data.img xvdb w
                """)

        @Argument(help: "Domain name or id.")
        var domain: String
        @Argument(help: "The backing: file:PATH, tap:aio:PATH or phy:DEVICE.")
        var backDev: String
        @Argument(help: "The guest's device name (xvdb, hdb, sdb, ...).")
        var frontDev: String
        @Argument(help: "r (read-only), w or w!.")
        var mode: String
        @Argument(help: "The backend domain (dom0, the only one).")
        var backDomain: String?

        func run() throws {
            try XmCommand.perform {
                if let backDomain, backDomain != "0", backDomain != "Domain-0" {
                    throw ToolstackError.invalidSpec(
                        "backend domain '\(backDomain)': only Domain-0 serves disks")
                }
                let disk: DiskSpec
                do throws(DomainConfigError) {
                    disk = try DiskSpec(attaching: backDev, as: frontDev, mode: mode)
                } catch { throw ToolstackError.config(error) }
                _ = try XmCommand.client().call(.blockAttach(domain: domain, disk: disk))
            }
        }
    }

    struct BlockDetach: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "block-detach",
            abstract: "Remove a disk from a running domain.")

        @Argument(help: "Domain name or id.")
        var domain: String
        @Argument(help: "The guest's device: its name (xvdb) or number (51728).")
        var devID: String
        @Flag(
            name: [.customShort("f"), .customLong("force")],
            help: "Remove it even if the guest does not let go.")
        var force = false

        func run() throws {
            try XmCommand.perform {
                _ = try XmCommand.client().call(
                    .blockDetach(domain: domain, device: devID, force: force))
            }
        }
    }

    struct BlockList: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "block-list",
            abstract: "List a domain's disks (Vdev, BE, handle, state, evt-ch, ring-ref, BE-path).")

        @Argument(help: "Domain name or id.")
        var domain: String

        func run() throws {
            try XmCommand.perform {
                guard case .text(let text) = try XmCommand.client().call(.blockList(domain: domain))
                else { throw ToolstackError.malformedMessage("xend did not answer with text") }
                print(text, terminator: "")
            }
        }
    }
}
