package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// Auth is how bridges and watchers authenticate to a cluster: SASL PLAIN
// with a user and password, over TLS when CAFile is set (or TLS with the
// system's roots). The same settings reach the bridge (sarama) and the
// watchers (franz-go), as a real cluster asks of every client.
type Auth struct {
	// SASL is "" (none) or "PLAIN".
	SASL     string
	User     string
	Password string
	// TLS dials the brokers over TLS; CAFile verifies them (the system's
	// roots without it); Insecure skips the verification.
	TLS      bool
	CAFile   string
	Insecure bool
}

// SASLPlain is the SASL mechanism Auth supports.
const SASLPlain = "PLAIN"

// Check reports what is wrong with the settings.
func (a *Auth) Check() error {
	if a == nil {
		return nil
	}
	switch a.SASL {
	case "":
	case SASLPlain:
		if a.User == "" {
			return errors.New("kafka auth: SASL PLAIN needs a user")
		}
	default:
		return fmt.Errorf("kafka auth: SASL mechanism %q: PLAIN is supported (SCRAM and OAUTHBEARER are not yet)", a.SASL)
	}
	if (a.CAFile != "" || a.Insecure) && !a.TLS {
		return errors.New("kafka auth: ca_file and insecure need tls: true")
	}
	return nil
}

func (a *Auth) tlsConfig() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: a.Insecure} //nolint:gosec // insecure is the user's explicit choice
	if a.CAFile != "" {
		pem, err := os.ReadFile(a.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka auth: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka auth: ca_file %s holds no PEM certificate", a.CAFile)
		}
		c.RootCAs = pool
	}
	return c, nil
}

// sarama applies the settings to a producer configuration.
func (a *Auth) sarama(sc *sarama.Config) error {
	if a == nil {
		return nil
	}
	if a.SASL == SASLPlain {
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		sc.Net.SASL.User, sc.Net.SASL.Password = a.User, a.Password
		sc.Net.SASL.Handshake = true
	}
	if a.TLS {
		tc, err := a.tlsConfig()
		if err != nil {
			return err
		}
		sc.Net.TLS.Enable, sc.Net.TLS.Config = true, tc
	}
	return nil
}

// kgo returns the client options of the settings.
func (a *Auth) kgo() ([]kgo.Opt, error) {
	if a == nil {
		return nil, nil
	}
	var opts []kgo.Opt
	if a.SASL == SASLPlain {
		opts = append(opts, kgo.SASL(plain.Auth{User: a.User, Pass: a.Password}.AsMechanism()))
	}
	if a.TLS {
		tc, err := a.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	return opts, nil
}
