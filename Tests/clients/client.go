// Go net/http clients for the corpus, one request a second, at most -count requests. Modes:
//   body-unclosed  http.Get, resp.Body never read nor closed (the classic Go leak)
//   correct        io.Copy(io.Discard, resp.Body); resp.Body.Close() (healthy)
// Prints {"ready": true, "pid": N} before the first request.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	count := flag.Int("count", 300, "requests at most")
	flag.Parse()
	mode, url := flag.Arg(0), flag.Arg(1)
	var kept []*http.Response
	fmt.Printf("{\"ready\": true, \"pid\": %d}\n", os.Getpid())
	deadline := time.Now().Add(time.Duration(*count+30) * time.Second)
	for i := 0; i < *count && time.Now().Before(deadline); i++ {
		resp, err := http.Get(url)
		if err == nil {
			switch mode {
			case "body-unclosed":
				kept = append(kept, resp)
			case "correct":
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			default:
				fmt.Fprintln(os.Stderr, "unknown mode", mode)
				os.Exit(2)
			}
		}
		time.Sleep(time.Second)
	}
	_ = kept
}
