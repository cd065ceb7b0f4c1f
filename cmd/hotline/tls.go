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
	server, err := serverTLS("sip.tls", c.CertFile, c.KeyFile)
	if err != nil {
		return nil, nil, err
	}
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
	return serverTLS("http", c.CertFile, c.KeyFile)
}

// serverTLS reads the certificate and key files of the settings section (sip.tls, http)
// into a server's TLS configuration; errors name the setting and the file.
func serverTLS(section, certFile, keyFile string) (*tls.Config, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("%s.cert_file: %w", section, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s.key_file: %w", section, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: certificate %s and key %s: %w", section, certFile, keyFile, err)
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
