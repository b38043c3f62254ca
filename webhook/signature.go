package webhook

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"strings"
	"sync"

	"github.com/lpconnect/appjwt/secret"
)

// algorithm is the hash of a signature's HMAC, the scheme before "=" in
// X-Liveperson-Signature.
type algorithm string

// The algorithms LivePerson signs with.
const (
	algSHA1   algorithm = "sha1"   // HMAC-SHA1, LivePerson's default
	algSHA256 algorithm = "sha256" // HMAC-SHA256, configured for some accounts
)

// macEncoding is how a signature writes its MAC.
type macEncoding int

// The encodings LivePerson writes MACs in.
const (
	base64MAC macEncoding = iota // standard base64 with padding, LivePerson's default
	hexMAC                       // lower-case hexadecimal
)

// Sign returns the X-Liveperson-Signature value that LivePerson sends by
// default with body: "sha1=" and the base64 of HMAC-SHA1 of the raw body,
// keyed with the client secret. A test, or a LivePerson stand-in, signs
// notifications with it. (A [Verifier] takes the other schemes LivePerson
// configures for some accounts too, HMAC-SHA256 and hex: a connector's
// code does not depend on which one signed.)
func Sign(clientSecret secret.String, body []byte) string {
	return signWith(algSHA1, base64MAC, clientSecret, body)
}

// signWith returns the X-Liveperson-Signature value for body with the
// given algorithm and encoding: the algorithm's name, "=", and the HMAC of
// the raw body, keyed with the client secret, in enc.
func signWith(alg algorithm, enc macEncoding, clientSecret secret.String, body []byte) string {
	m := hmac.New(alg.hash(), []byte(clientSecret))
	m.Write(body)
	sum := m.Sum(nil)
	if enc == hexMAC {
		return string(alg) + "=" + hex.EncodeToString(sum)
	}
	return string(alg) + "=" + base64.StdEncoding.EncodeToString(sum)
}

// hash returns the hash function of a.
func (a algorithm) hash() func() hash.Hash {
	if a == algSHA256 {
		return sha256.New
	}
	return sha1.New
}

// size is the length of a's MAC in bytes.
func (a algorithm) size() int {
	if a == algSHA256 {
		return sha256.Size
	}
	return sha1.Size
}

// signature is a parsed X-Liveperson-Signature.
type signature struct {
	alg algorithm
	buf [sha256.Size]byte // the MAC, in its first alg.size() bytes
}

func (s *signature) mac() []byte { return s.buf[:s.alg.size()] }

// strictBase64 refuses an encoding whose unused bits are not zero, so that
// a MAC has one base64 form, as it has one hex form up to case.
var strictBase64 = base64.StdEncoding.Strict()

// parseSignature parses v, an X-Liveperson-Signature: a scheme, in any ASCII
// case, "=", and a MAC of the scheme's size, in padded standard base64 or
// in hexadecimal of either case. It allocates nothing.
func parseSignature(v string) (signature, bool) {
	var s signature
	scheme, enc, ok := strings.Cut(v, "=")
	switch {
	case !ok:
		return s, false
	case equalFoldASCII(scheme, string(algSHA1)):
		s.alg = algSHA1
	case equalFoldASCII(scheme, string(algSHA256)):
		s.alg = algSHA256
	default:
		return s, false
	}
	size := s.alg.size()
	// Copying into arrays lets the decoders work on the stack.
	var src [2 * sha256.Size]byte // the longest: hex of a SHA-256 MAC
	var dst [sha256.Size + 3]byte // base64 decoding may write a quantum's slack
	n := copy(src[:], enc)
	switch len(enc) {
	case hex.EncodedLen(size):
		if _, err := hex.Decode(s.buf[:size], src[:n]); err != nil {
			return s, false
		}
	case base64.StdEncoding.EncodedLen(size):
		if m, err := strictBase64.Decode(dst[:], src[:n]); err != nil || m != size {
			return s, false
		}
		copy(s.buf[:], dst[:size])
	default:
		return s, false
	}
	return s, true
}

// keyedMACs pools the HMAC states of one secret, one pool per algorithm,
// so that verifying allocates nothing.
type keyedMACs struct {
	sha1, sha256 sync.Pool // of *pooledMAC
}

func newKeyedMACs(s secret.String) *keyedMACs {
	key := []byte(s)
	return &keyedMACs{
		sha1:   sync.Pool{New: func() any { return &pooledMAC{h: hmac.New(sha1.New, key)} }},
		sha256: sync.Pool{New: func() any { return &pooledMAC{h: hmac.New(sha256.New, key)} }},
	}
}

func (k *keyedMACs) pool(alg algorithm) *sync.Pool {
	if alg == algSHA256 {
		return &k.sha256
	}
	return &k.sha1
}

func (k *keyedMACs) get(alg algorithm) *pooledMAC { return k.pool(alg).Get().(*pooledMAC) }

func (k *keyedMACs) put(alg algorithm, m *pooledMAC) { k.pool(alg).Put(m) }

// pooledMAC is an HMAC state with room for its sum.
type pooledMAC struct {
	h   hash.Hash
	out [sha256.Size]byte
}

// sum returns the MAC of body, in m's own memory.
func (m *pooledMAC) sum(body []byte) []byte {
	m.h.Reset()
	m.h.Write(body)
	return m.h.Sum(m.out[:0])
}
