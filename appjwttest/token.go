package appjwttest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// serial numbers the tokens of all servers of the process. RS256 signatures
// are deterministic: without a jti, two AppJWTs issued in the same second
// would be byte-identical, and a token fetched after RevokeTokens could be
// the revoked one. Counting across servers also keeps a server from taking
// another's token for its own.
var serial atomic.Uint64

func nextJTI() string { return strconv.FormatUint(serial.Add(1), 10) }

// RevokeTokens revokes every AppJWT the server has issued so far, by
// either token API: Verify rejects them, and so do the
// Connector API endpoints, with errorCode 40102 as for an expired AppJWT,
// and the v2 API. Tokens issued afterwards are valid. It lets a
// test make a cached token go bad before its expiry, to check that the code
// under test recovers, without waiting for the token to expire.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appGen++
}

// Verify checks that token is one the server issued and still takes, of
// the kind endpoint e issues: an AppJWT of [Sentinel], a token of
// Sentinel's v2 API ([SentinelV2Token], or Sentinel with ?v=2.0), or a
// ConsumerJWS of [Consumer]. It checks the signature, the account and, for
// an AppJWT, the client and that its iss is Sentinel (in any case); that
// the token has not been revoked; and that it has not expired by the
// server's clock (a ConsumerJWS without exp never does). It returns the
// token's subject: the client ID of an AppJWT, the ext_consumer_id of a
// ConsumerJWS. Any other e is an error.
func (s *Server) Verify(e Endpoint, token string) (subject string, err error) {
	now := s.now()
	switch e {
	case Sentinel:
		err = s.verifyAppJWT(token, now)
	case SentinelV2Token:
		err = s.verifyIssued(&signingKeyV2().PublicKey, token, now)
	case Consumer:
		return s.verifyConsumerJWS(token, now)
	default:
		return "", fmt.Errorf("appjwttest: Verify: %v issues no token", e)
	}
	if err != nil {
		return "", err
	}
	return s.ClientID, nil
}

// errIssuer is verifyAppJWT's error for an AppJWT that is valid but for
// its iss claim.
var errIssuer = errors.New("appjwttest: token's iss is not Sentinel")

func (s *Server) verifyAppJWT(token string, now time.Time) error {
	return s.verifyIssued(&signingKey().PublicKey, token, now)
}

// verifyIssued checks a token that the server signed with key, as an
// AppJWT from Sentinel's v1 or v2 API.
func (s *Server) verifyIssued(key *rsa.PublicKey, token string, now time.Time) error {
	var c struct {
		Aud string `json:"aud"`
		Azp string `json:"azp"`
		Iss string `json:"iss"`
		Exp int64  `json:"exp"`
		Jti string `json:"jti"`
	}
	if err := parseWith(key, token, &c); err != nil {
		return err
	}
	s.mu.Lock()
	gen, issued := s.appJWTs[c.Jti]
	revoked := gen != s.appGen
	s.mu.Unlock()
	switch {
	case c.Aud != s.AccountID || c.Azp != s.ClientID:
		return fmt.Errorf("appjwttest: token is for account %q, client %q", c.Aud, c.Azp)
	case !issued:
		return errors.New("appjwttest: token was not issued by this server")
	case revoked:
		return errors.New("appjwttest: token has been revoked")
	case now.Unix() >= c.Exp:
		return errors.New("appjwttest: token has expired")
	case !strings.EqualFold(c.Iss, "Sentinel"):
		return errIssuer
	}
	return nil
}

// RevokeConsumer revokes every ConsumerJWS the server has issued so far for
// the consumer extConsumerID: Verify rejects them, and so does
// the Send API, with errorCode 40103. Those issued afterwards are valid.
func (s *Server) RevokeConsumer(extConsumerID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consumerGen[extConsumerID]++
}

func (s *Server) verifyConsumerJWS(token string, now time.Time) (string, error) {
	var c struct {
		AccountID     string `json:"account_id"`
		ExtConsumerID string `json:"ext_consumer_id"`
		Exp           int64  `json:"exp"`
		Jti           string `json:"jti"`
	}
	if err := parseWith(&signingKey().PublicKey, token, &c); err != nil {
		return "", err
	}
	s.mu.Lock()
	issued, ok := s.consumerJWSs[c.Jti]
	revoked := issued.gen != s.consumerGen[issued.extConsumerID]
	s.mu.Unlock()
	switch {
	case c.AccountID != s.AccountID:
		return "", fmt.Errorf("appjwttest: ConsumerJWS is for account %q", c.AccountID)
	case !ok || issued.extConsumerID != c.ExtConsumerID:
		return "", errors.New("appjwttest: ConsumerJWS was not issued by this server")
	case revoked:
		return "", errors.New("appjwttest: ConsumerJWS has been revoked")
	case c.Exp != 0 && now.Unix() >= c.Exp:
		return "", errors.New("appjwttest: ConsumerJWS has expired")
	}
	return c.ExtConsumerID, nil
}

// sign signs claims with the key of v1 AppJWTs and ConsumerJWS.
func sign(claims map[string]any) string { return signWith(signingKey(), "appjwttest", claims) }

// signWith makes an RS256 JWT of claims, signed with key, whose header
// names the key as kid.
func signWith(key *rsa.PrivateKey, kid string, claims map[string]any) string {
	header, _ := json.Marshal(map[string]string{"kid": kid, "typ": "JWT", "alg": "RS256"})
	payload, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
	if err != nil {
		panic("appjwttest: signing: " + err.Error())
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// parseWith checks that key signed token and decodes its claims into
// claims.
func parseWith(key *rsa.PublicKey, token string, claims any) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("appjwttest: not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return errors.New("appjwttest: malformed signature")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], sig) != nil {
		return errors.New("appjwttest: bad signature")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return errors.New("appjwttest: malformed payload")
	}
	if err := json.Unmarshal(payload, claims); err != nil {
		return fmt.Errorf("appjwttest: malformed claims: %v", err)
	}
	return nil
}

// newUUID returns a random (version 4) UUID, the form of LivePerson's IDs.
func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
