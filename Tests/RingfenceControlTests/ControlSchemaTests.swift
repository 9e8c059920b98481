import RingfenceControl
import Testing

@Test func schemaVersionIsOne() {
    #expect(ControlSchema.version == 1)
}
