package lphttp

import (
	"fmt"
	"testing"
)

func TestErrorCode(t *testing.T) {
	tests := []struct {
		name, body string
		want       int
	}{
		{"LivePerson's 401", `{"kind":"resp","code":401,"body":{"title":"AppJWT has expired or is invalid","details":"x","errorCode":40102},"type":".ReqBody$ErrorResp"}`, 40102},
		{"errorCode as a string", `{"body":{"errorCode":"40103"}}`, 40103},
		{"no errorCode", `{"error":"invalid_client"}`, 0},
		{"not JSON", `<html>401</html>`, 0},
		{"empty", ``, 0},
	}
	for _, tt := range tests {
		if got := ErrorCode([]byte(tt.body)); got != tt.want {
			t.Errorf("%s: ErrorCode = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func FuzzErrorCode(f *testing.F) {
	f.Add([]byte(`{"kind":"resp","code":401,"body":{"title":"t","details":"d","errorCode":40102}}`))
	f.Add([]byte(`{"body":{"errorCode":"40103"}}`))
	f.Add([]byte(`{"body":{"errorCode":1e99}}`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		code := ErrorCode(body)
		if code == 0 {
			return
		}
		// A code it found is one the body says: said again, it reads the same.
		if again := ErrorCode(fmt.Appendf(nil, `{"body":{"errorCode":%d}}`, code)); again != code {
			t.Errorf("ErrorCode(%q) = %d, which reads back as %d", body, code, again)
		}
	})
}
