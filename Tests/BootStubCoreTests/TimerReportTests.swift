import BootStubCore
import Testing

@Suite("the stubs' TSC line")
struct TimerReportTests {
    @Test("calibrated: MHz from cycles per millisecond")
    func calibrated() {
        var sink = StringSink()
        TimerReport.write(cyclesPerMillisecond: 2_394_000, to: &sink)
        #expect(sink.string == "bootstub: TSC 2394 MHz (calibrated against the PIT over 20 ms)\n")
    }

    @Test("not calibrated: says so")
    func uncalibrated() {
        var sink = StringSink()
        TimerReport.write(cyclesPerMillisecond: nil, to: &sink)
        #expect(
            sink.string == "bootstub: TSC not calibrated: the PIT did not count; times in cycles only\n")
    }
}
