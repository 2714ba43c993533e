package netem

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Handler returns the HTTP JSON control API of the proxy:
//
//	GET    /links          live links ([]LinkInfo)
//	GET    /counts         what loss, duplicate, reorder and NAT faults did (CountsReport)
//	GET    /faults         applied faults ([]FaultInfo)
//	POST   /faults         {"selector": Selector, "fault": Fault} -> {"id": "f1"}
//	DELETE /faults/{id}    remove one fault
//	DELETE /faults         remove every fault
//	GET    /groups         group listeners ([]GroupInfo)
//	POST   /groups         {"name": "dev-1"} -> GroupInfo with the listener's address
//
// Errors are {"error": "..."} with status 400 (bad request), 404 (unknown
// fault, or a link selector naming no live link) or 409 (proxy closed).
func (p *Proxy) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /links", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, p.Links())
	})
	mux.HandleFunc("GET /counts", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, p.Counts())
	})
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, p.Faults())
	})
	mux.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Selector Selector `json:"selector"`
			Fault    Fault    `json:"fault"`
		}
		if err := decodeJSON(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		id, err := p.Apply(req.Selector, req.Fault)
		if errors.Is(err, ErrUnknownLink) {
			writeError(w, http.StatusNotFound, err)
			return
		}
		if err != nil {
			writeError(w, p.errStatus(), err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"id": id})
	})
	mux.HandleFunc("DELETE /faults/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := p.Remove(r.PathValue("id")); err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, ErrUnknownFault) {
				status = http.StatusNotFound
			}
			writeError(w, status, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, r *http.Request) {
		for _, f := range p.Faults() {
			p.Remove(f.ID) // a schedule may have dropped it meanwhile: nothing to do then
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /groups", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, p.Groups())
	})
	mux.HandleFunc("POST /groups", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name string `json:"name"`
		}
		if err := decodeJSON(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		addr, err := p.ListenGroup(req.Name)
		if err != nil {
			writeError(w, p.errStatus(), err)
			return
		}
		writeJSON(w, http.StatusCreated, GroupInfo{Name: req.Name, Addr: addr})
	})
	return mux
}

// GroupInfo is a group listener: links accepted on Addr join group Name.
type GroupInfo struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
}

// Groups lists the group listeners opened by ListenGroup.
func (p *Proxy) Groups() []GroupInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := []GroupInfo{}
	for _, l := range p.listeners {
		if l.group != "" {
			out = append(out, GroupInfo{Name: l.group, Addr: l.ln.Addr().String()})
		}
	}
	return out
}

// errStatus is 409 once the proxy is closed, else 400.
func (p *Proxy) errStatus() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode request body: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
