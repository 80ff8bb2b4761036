package cluster

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SecretFileName is the file in a node's data directory that holds the
// cluster secret the node uses.
const SecretFileName = "cluster-secret"

// minSecret is the shortest secret accepted, in bytes.
const minSecret = 16

// ErrNoSecret means a node needs the cluster secret (to join a cluster)
// and none was given.
var ErrNoSecret = errors.New("no cluster secret")

// ReadSecret reads a cluster secret from path: the file's bytes without
// surrounding white space, at least 16 of them.
func ReadSecret(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read cluster secret: %w", err)
	}
	s := bytes.TrimSpace(data)
	if len(s) < minSecret {
		return nil, fmt.Errorf("cluster secret %s: %d bytes, want at least %d", path, len(s), minSecret)
	}
	return s, nil
}

// NodeSecret returns the secret a node with data directory dataDir uses.
// A secret from file (if not empty) wins and is copied into the data
// directory if that has none yet; else the data directory's own; else, if
// create, a new random secret is written there (a node bootstrapping a new
// cluster); else the error wraps ErrNoSecret.
func NodeSecret(dataDir, file string, create bool) ([]byte, error) {
	own := filepath.Join(dataDir, SecretFileName)
	if file != "" {
		s, err := ReadSecret(file)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(own); errors.Is(err, fs.ErrNotExist) {
			if err := writeSecret(dataDir, own, s); err != nil {
				return nil, err
			}
		}
		return s, nil
	}
	s, err := ReadSecret(own)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	if !create {
		return nil, fmt.Errorf("%s has no %s: %w", dataDir, SecretFileName, ErrNoSecret)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	s = []byte(hex.EncodeToString(raw))
	if err := writeSecret(dataDir, own, s); err != nil {
		return nil, err
	}
	return s, nil
}

func writeSecret(dataDir, path string, s []byte) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("write cluster secret: %w", err)
	}
	if err := os.WriteFile(path, append(s, '\n'), 0o600); err != nil {
		return fmt.Errorf("write cluster secret: %w", err)
	}
	return nil
}
