package beacon

// Interval is how often the beacon transmits, in seconds.
const Interval = 45

// Ping sends one beacon frame.
func Ping() error { return nil }
