package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// certLifetime is how long a run's certificate is valid: runs are meant
// to last a working day, not to be trusted for long.
const certLifetime = 30 * 24 * time.Hour

// newCertificate makes a self-signed CA certificate, with a new P-256 key,
// for 127.0.0.1, ::1, localhost, host and the address the server listens
// on. It returns the TLS configuration that serves it and the certificate
// in PEM, for clients to trust. net/http/httptest's certificate will not
// do: its key is published in Go's source, so trusting it would trust
// anyone for example.com.
func newCertificate(host string, listening net.Addr) (*tls.Config, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("appjwttest: generating a key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("appjwttest: generating a serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"appjwttest"}, CommonName: "appjwttest LivePerson stand-in"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	addSAN(tmpl, host)
	if tcp, ok := listening.(*net.TCPAddr); ok {
		addSAN(tmpl, tcp.IP.String())
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("appjwttest: making the certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	return cfg, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// addSAN adds host to the names or addresses of tmpl, unless it is there.
func addSAN(tmpl *x509.Certificate, host string) {
	if ip := net.ParseIP(host); ip != nil {
		for _, have := range tmpl.IPAddresses {
			if have.Equal(ip) {
				return
			}
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		return
	}
	for _, have := range tmpl.DNSNames {
		if have == host {
			return
		}
	}
	tmpl.DNSNames = append(tmpl.DNSNames, host)
}
