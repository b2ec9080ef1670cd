import Testing

@testable import DomainConfig

/// Configs in the style of Xen's own tools/examples/xmexample2 and
/// xmexample3: a `def` check function with `if`, `raise` and `return`,
/// `xm_vars.var(...)` and `xm_vars.check()`, the variable given on the
/// command line (`xm create FILE vmid=3`), integer arithmetic and `%`.
@Suite struct XmVarsTests {
    /// The part of both examples that defines and checks `vmid`, as Xen
    /// ships it (comments left out).
    static let vmidPreamble = """
        def vmid_check(var, val):
            val = int(val)
            if val <= 0:
                raise ValueError
            return val

        xm_vars.var('vmid',
                    use="Virtual machine id. Integer greater than 0.",
                    check=vmid_check)

        xm_vars.check()

        """

    /// xmexample2's settings after the preamble.
    static let xmexample2 =
        vmidPreamble + """
            kernel = "/boot/vmlinuz-2.6.10-xenU"
            memory = 64
            name = "VM%d" % vmid
            vcpus = 4 # make your domain a 4-way
            vif = [ '' ]
            disk = [ 'phy:sda%d,sda1,w' % (7+vmid),
                     'phy:sda6,sda6,r' ]
            root = "/dev/sda1 ro"
            extra = "4 VMID=%d usr=/dev/sda6" % vmid
            """

    /// xmexample3's settings after the preamble.
    static let xmexample3 =
        vmidPreamble + """
            kernel = "/path/to/domU/kernel"
            memory = 64
            name = "VM%d" % vmid
            cpus = "%s" % vmid # set based on vmid (mod number of CPUs)
            vif = [ 'ip=192.168.%d.1/24' % (vmid)]
            disk = [ 'phy:hda%d,hda1,w' % (vmid)]
            dhcp="off"
            ip="192.168.%d.2" % (vmid)
            netmask="255.255.255.0"
            gateway="192.168.%d.1" % (vmid)
            hostname= "domain-%d.xeno" % vmid
            root = "/dev/hda1 ro"
            extra = "4 VMID=%d" % vmid
            """

    /// The preamble's first line numbers, for expected error locations.
    static let intLine = 2
    static let raiseLine = 4

    @Test("xmexample2 with vmid=3 gives the spec xm built")
    func example2() throws {
        let spec = try evaluate(Self.xmexample2, file: "/etc/xen/xmexample2", arguments: ["vmid=3"])
        #expect(spec.name == "VM3")
        #expect(spec.kernel == "/boot/vmlinuz-2.6.10-xenU")
        #expect(spec.memory == 64)
        #expect(spec.vcpus == 4)
        #expect(spec.vifs.count == 1)
        // 7 + vmid: sda10, exported as sda1 (8:1 is 2049); sda6 read-only.
        #expect(spec.disks.map(\.uname) == ["phy:sda10", "phy:sda6"])
        #expect(spec.disks.map(\.dev) == ["sda1", "sda6"])
        #expect(spec.disks.map(\.deviceNumber) == [2049, 2054])
        #expect(spec.disks.map(\.mode) == [.readWrite, .readOnly])
        #expect(spec.root == "/dev/sda1 ro")
        #expect(spec.extra == "4 VMID=3 usr=/dev/sda6")
        #expect(spec.warnings.isEmpty, "vmid is declared with xm_vars: no warning")
    }

    @Test("xmexample2 gives the same spec as its reduced form without the check function")
    func example2MatchesReducedForm() throws {
        let full: DomainSpec = try evaluate(
            Self.xmexample2, file: "/etc/xen/x", arguments: ["vmid=5"])
        let reduced: DomainSpec = try evaluate(
            CommandLineTests.xmexample2, file: "/etc/xen/x", arguments: ["vmid=5"])
        #expect(full == reduced)
    }

    @Test("xmexample3 with vmid=2 gives the spec xm built")
    func example3() throws {
        let spec = try evaluate(Self.xmexample3, file: "/etc/xen/xmexample3", arguments: ["vmid=2"])
        #expect(spec.name == "VM2")
        #expect(spec.cpus?.sorted == [2])
        #expect(spec.vifs.map(\.ip) == [["192.168.2.1/24"]])
        #expect(spec.disks.map(\.uname) == ["phy:hda2"])
        #expect(spec.disks.map(\.dev) == ["hda1"])
        // xm's ip= argument: ip:nfs_server:gateway:netmask:hostname:eth0:dhcp.
        #expect(
            spec.ipConfiguration
                == "192.168.2.2:1.2.3.4:192.168.2.1:255.255.255.0:domain-2.xeno:eth0:off")
        #expect(spec.extra == "4 VMID=2")
        #expect(spec.cmdline.contains("root=/dev/hda1 ro"))
        #expect(spec.warnings.isEmpty)
    }

    @Test("without vmid the check function fails at int(None), as xm's did", arguments: [2, 3])
    func missingVariable(example: Int) {
        let text = example == 2 ? Self.xmexample2 : Self.xmexample3
        let error = failure(text, file: "/etc/xen/xmexample\(example)")
        #expect(error?.location?.line == Self.intLine)
        #expect(error?.key == "vmid")
        let message = error?.description ?? ""
        #expect(message.contains("vmid_check() refused the value None"), "\(message)")
        #expect(message.contains("int() argument must be a string or a number, not 'NoneType'"))
    }

    @Test("vmid=0 reaches the raise: the error is at that line and names ValueError")
    func refusedValue() {
        let error = failure(Self.xmexample2, file: "/etc/xen/xmexample2", arguments: ["vmid=0"])
        #expect(error?.location?.line == Self.raiseLine)
        #expect(error?.key == "vmid")
        let message = error?.description ?? ""
        #expect(message.contains("refused the value 0 from command line argument 'vmid=0'"))
        #expect(message.contains("raised ValueError"), "\(message)")
    }

    @Test("the check's return value replaces the variable; a check may call a later def")
    func checkConvertsTheValue() throws {
        let text = """
            def pad(var, val):
                if val is None:
                    return "none given"
                elif len_ok(val):
                    return "%s=[%5s]" % (var, val)
                else:
                    raise ValueError, "too long: " + val
            def len_ok(val):
                if val < "zzz":
                    return 1
                return 0
            xm_vars.var('site', check=pad)
            xm_vars.var('unchecked')
            xm_vars.check()
            label = site
            """
        #expect(
            try value(of: "label", in: text, arguments: ["site=ams"]) == .string("site=[  ams]"))
        #expect(try value(of: "label", in: text) == .string("none given"))
        let error = failure(kernelLine + text, arguments: ["site=zzzz"])
        #expect(error?.location?.line == 8)
        #expect(error?.description.contains("raised ValueError: too long: zzzz") == true)
    }

    @Test("if/elif/else, not/and/or and chained comparisons at the top level")
    func conditionals() throws {
        let text = """
            n = 7
            if n % 2 == 0 and n > 0:
                kind = "even"
            elif not n < 5 < 100 or n is None:
                kind = "odd, %d or more" % 5
            else:
                kind = "small"
            if n != 7: kind = "unreachable"
            """
        #expect(try value(of: "kind", in: text) == .string("odd, 5 or more"))
    }

    @Test("functions read the file's variables; names they assign are their own")
    func functionScope() throws {
        let text = """
            base = 1024
            def mem(n):
                size = base * n
                return size + 1
            memory = mem(2) // 2
            size = 3
            """
        #expect(try value(of: "memory", in: text) == .integer(1024))
        #expect(try value(of: "size", in: text) == .integer(3))
        // As Python: an assigned name is local in the whole body, so reading
        // it first is an error, not the file's variable.
        let shadowing =
            kernelLine + "base = 1\ndef f():\n    base = base + 1\n    return base\nmemory = f()\n"
        let error = failure(shadowing)
        #expect(error?.location?.line == 4)
        #expect(
            error?.description.contains("local variable 'base' referenced before assignment")
                == true)
    }

    @Test("runaway recursion is an error, not a crash")
    func recursion() {
        let error = failure(kernelLine + "def f(n):\n    return f(n + 1)\nmemory = f(0)\n")
        #expect(error?.description.contains("more than 32 deep") == true)
    }

    @Test(
        "constructs outside the subset name themselves and their line",
        arguments: [
            ("for i in [1]:\n    pass\n", 1, "'for' is not supported"),
            ("a = 1\nwhile a:\n    a = 0\n", 2, "'while' is not supported"),
            ("import os\n", 1, "'import' is not supported"),
            ("a = 1\nprint a\n", 2, "'print' is not supported"),
            ("try:\n    a = 1\nexcept:\n    a = 2\n", 1, "'try' is not supported"),
            ("def f():\n    def g():\n        pass\n", 2, "'def' inside a function"),
            ("def f(a=1):\n    pass\n", 1, "defaults"),
            ("a = 1\nif a in [1]:\n    pass\n", 2, "'in' is not supported"),
            ("a = (1 == 1)\n", 1, "comparisons only in an if condition"),
            ("return 1\n", 1, "'return' outside a function"),
            ("a = os.path\n", 1, "only xm_vars.var() and xm_vars.check()"),
            ("xm_vars.help()\n", 1, "xm_vars has only var() and check()"),
            ("a = f(1)\ndef f(x):\n    return x\n", 1, "'f()' is not supported"),
            ("a = lambda: 1\n", 1, "'lambda' is not supported"),
            ("if 1:\nb = 2\n", 1, "needs an indented block"),
            ("if 1:\n    a = 1\n  b = 2\n", 3, "unindent does not match"),
            ("a = 1\nelse:\n    a = 2\n", 2, "'else' without an 'if'"),
            ("global a\n", 1, "'global' is not supported"),
        ])
    func unsupported(text: String, line: Int, words: String) {
        let error = failure(kernelLine + text)
        guard case .syntax(let location, let message)? = error else {
            Issue.record(
                "expected a syntax error for \(text.debugDescription), got \(String(describing: error))"
            )
            return
        }
        #expect(location.line == line + 1, "\(text.debugDescription): \(message)")
        #expect(message.contains(words), "\(text.debugDescription): \(message)")
    }

    @Test(
        "evaluation errors in the new constructs are located",
        arguments: [
            ("xm_vars.var('v', check=nothing)\n", 1, "no function 'nothing'"),
            ("def f(a):\n    return a\nm = f\n", 3, "'f' is a function"),
            ("def f(a):\n    return a\nm = f(1, 2)\n", 3, "takes exactly 1 arguments (2 given)"),
            ("raise ValueError('bad vmid %d' % 3)\n", 1, "raised ValueError: bad vmid 3"),
            ("if 'a' < 1:\n    pass\n", 1, "cannot order 'str' and 'int'"),
        ])
    func evaluationErrors(text: String, line: Int, words: String) {
        let error = failure(kernelLine + text)
        guard case .evaluation(let location, _, let message)? = error else {
            Issue.record(
                "expected an evaluation error for \(text.debugDescription), got \(String(describing: error))"
            )
            return
        }
        #expect(location.line == line + 1, "\(text.debugDescription): \(message)")
        #expect(message.contains(words), "\(text.debugDescription): \(message)")
    }
}
