/// ZMTP 3.0 and 3.1 (RFC 23 and 37) as a pure codec: no I/O, no allocation beyond what a caller
/// asks for. Written by hand because no maintained Swift ZMTP library exists, and the broker must
/// control every byte it accepts from an untrusted peer (caps before allocation, strict framing).
public enum ZMTP {}
