module github.com/lpconnect/appjwt/e2e

go 1.26.0

require (
	github.com/chromedp/cdproto v0.160.1
	github.com/chromedp/chromedp v0.23.1
	github.com/lpconnect/appjwt v0.0.0
	golang.org/x/oauth2 v0.38.0
)

require github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect

replace github.com/lpconnect/appjwt => ../
