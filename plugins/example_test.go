package plugins_test

import (
	"fmt"

	"github.com/ponder-rlm/ponder/plugins"
	"github.com/ponder-rlm/ponder/sdk"
)

// Manifests are validated with errors that say what to change.
func ExampleManifest_Validate() {
	m := plugins.Manifest{Name: "beam-lite", Kind: sdk.KindStrategy, Version: "1.0.0", ProtocolVersion: 2,
		Binary: "beam-lite", SHA256: "c1fb191e22b9c3ce7eb7a2e506a506a3943a18faabfbab090dde461823c5775b"}
	fmt.Println(m.Validate())
	m.ProtocolVersion = sdk.ProtocolVersion
	m.Binary = "../../bin/sh"
	fmt.Println(m.Validate())
	// Output:
	// plugin beam-lite speaks plugin protocol 2 but this Ponder speaks 1: rebuild it against the current sdk and install it again
	// manifest of beam-lite: binary must be a file name inside the plugin directory, got "../../bin/sh"
}
