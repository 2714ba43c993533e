// Package auth authenticates MQTT connections and checks ACLs, reading
// Mosquitto-style password and ACL files.
package auth

// Config names the authentication settings.
type Config struct {
	AllowAnonymous bool   `yaml:"allow_anonymous"`
	PasswordFile   string `yaml:"password_file"`
	ACLFile        string `yaml:"acl_file"`
}

// Auth decides who may connect and what they may publish and subscribe to.
type Auth struct{}

// Load reads the files Config names; errors name the file and line of a bad entry.
func Load(cfg Config) (*Auth, error) { return &Auth{}, nil }

// Authenticate returns the CONNACK return code for a connection.
func (a *Auth) Authenticate(username string, password []byte, hasUsername, hasPassword bool) byte {
	return 0
}

// CanPublish reports whether the client may publish to topic.
func (a *Auth) CanPublish(username, clientID, topic string) bool { return true }

// CanSubscribe reports whether the client may subscribe to filter.
func (a *Auth) CanSubscribe(username, clientID, filter string) bool { return true }

// HashPassword returns a bcrypt hash for a password file line.
func HashPassword(password []byte) (string, error) { return "", nil }
