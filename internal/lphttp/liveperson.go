package lphttp

import (
	"encoding/json"
	"strconv"
)

// LivePerson's Connector API errorCodes that blame the ConsumerJWS, not
// the AppJWT.
const (
	CodeConsumerJWSInvalid = 40103
	CodeConsumerJWSMissing = 40104
)

// ErrorCode returns the errorCode of a Connector API error body, such as
// 40102 in {"kind":"resp","code":401,"body":{"errorCode":40102}}, a number
// or a string of digits; 0 if it has none.
func ErrorCode(body []byte) int {
	var answer struct {
		Body struct {
			ErrorCode json.Number `json:"errorCode"`
		} `json:"body"`
	}
	if json.Unmarshal(body, &answer) != nil {
		return 0
	}
	n, _ := strconv.Atoi(answer.Body.ErrorCode.String())
	return n
}
