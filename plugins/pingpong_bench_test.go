package plugins

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// pingPongEnv names the socket the test binary, started again as the
// peer of BenchmarkSocketPingPong, dials and echoes on.
const pingPongEnv = "PONDER_TEST_PINGPONG_SOCKET"

func init() {
	sock := os.Getenv(pingPongEnv)
	if sock == "" {
		return
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		os.Exit(2)
	}
	buf := make([]byte, 256)
	for {
		n, err := c.Read(buf)
		if err != nil {
			os.Exit(0)
		}
		if _, err := c.Write(buf[:n]); err != nil {
			os.Exit(0)
		}
	}
}

// BenchmarkSocketPingPong is the floor under a plugin call: 100 bytes to
// another Go process over a Unix socket and back, with no gRPC, TLS or
// framing. BenchmarkToolCall's p50 less this one's is what the call
// itself costs.
//
//	go test -run '^$' -bench SocketPingPong -benchtime 5000x ./plugins/
func BenchmarkSocketPingPong(b *testing.B) {
	sock := filepath.Join(b.TempDir(), "pp.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	peer := exec.Command(exe)
	peer.Env = append(os.Environ(), pingPongEnv+"="+sock)
	if err := peer.Start(); err != nil {
		b.Fatal(err)
	}
	c, err := l.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		c.Close() // the peer exits on EOF
		_ = peer.Wait()
	}()
	buf := make([]byte, 256)
	var lat []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := c.Write(buf[:100]); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < 100; {
			n, err := c.Read(buf[got:])
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
		lat = append(lat, time.Since(t0))
	}
	reportPercentiles(b, lat)
}
