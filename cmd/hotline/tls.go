package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"github.com/hotline-project/hotline/config"
)

// sipTLS is what SIP over TLS needs at start-up: the listener and the server's and client's
// TLS configurations. All nil when sip.tls.listen is empty.
type sipTLS struct {
	ln     net.Listener
	server *tls.Config
	client *tls.Config
}

// loadSIPTLS reads the certificate, key and CA files of c. Every error names the file (and
// the setting) it is about, so an operator sees at once which one to fix.
func loadSIPTLS(c config.SIPTLS) (*tls.Config, *tls.Config, error) {
	certPEM, err := os.ReadFile(c.CertFile)
	if err != nil {
		return nil, nil, fmt.Errorf("sip.tls.cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(c.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("sip.tls.key_file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("sip.tls: certificate %s and key %s: %w", c.CertFile, c.KeyFile, err)
	}
	server := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	client := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("sip.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("sip.tls.ca_file: %s: no PEM certificate found", c.CAFile)
		}
		client.RootCAs = pool
	}
	return server, client, nil
}

// loadHTTPTLS reads http.cert_file and http.key_file; nil when neither is set. Errors
// name the file and the setting.
func loadHTTPTLS(c config.HTTP) (*tls.Config, error) {
	if c.CertFile == "" && c.KeyFile == "" {
		return nil, nil
	}
	certPEM, err := os.ReadFile(c.CertFile)
	if err != nil {
		return nil, fmt.Errorf("http.cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("http.key_file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("http: certificate %s and key %s: %w", c.CertFile, c.KeyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// listenSIPTLS loads the TLS files and binds the TLS port; with sip.tls.listen empty it
// returns a zero sipTLS.
func listenSIPTLS(c config.SIPTLS) (sipTLS, error) {
	if c.Listen == "" {
		return sipTLS{}, nil
	}
	server, client, err := loadSIPTLS(c)
	if err != nil {
		return sipTLS{}, err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return sipTLS{}, fmt.Errorf("sip tls: %w", err)
	}
	return sipTLS{ln: ln, server: server, client: client}, nil
}
