// Package lphttp is the HTTP plumbing that appjwt and its subpackages share
// for their requests to LivePerson: LivePerson's retry policy (retry.go),
// answers read whole through a cap (reply.go), requests whose URL no input
// can move to another host or path and that no redirect follows
// (request.go, url.go), requests sent once more after a 401 (replay.go),
// and the Connector API's errorCodes (liveperson.go).
package lphttp
