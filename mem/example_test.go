package mem_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"

	"github.com/vmux/vmux/mem"
)

// Two VMs of one tenant: an identical page is shared, a similar one patched,
// a hole costs nothing. (Across tenants, i.e. domains, neither happens unless
// Config.CrossDomain is set.)
func Example() {
	e, err := mem.NewEngine(mem.Config{}) // sketch detector, lz4, per-domain
	if err != nil {
		panic(err)
	}
	a := e.AddSource("vm-a", "tenant-1")
	b := e.AddSource("vm-b", "tenant-1")
	page := make([]byte, mem.PageSize)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range page {
		page[i] = byte(r.UintN(256)) // incompressible
	}
	edited := bytes.Clone(page)
	copy(edited[1000:], "EDITED")
	_ = e.AddPage(a, page)
	_ = e.AddPage(b, page)   // identical: shared
	_ = e.AddPage(b, edited) // similar: patched against vm-a's page
	_ = e.AddZeroPages(b, 1<<20)
	res, err := e.Finish()
	if err != nil {
		panic(err)
	}
	for _, p := range []mem.PageRef{{Source: a, Page: 0}, {Source: b, Page: 0}, {Source: b, Page: 1}, {Source: b, Page: 2}} {
		fmt.Println(p, res.Page(p.Source, p.Page).Kind)
	}
	dst := make([]byte, mem.PageSize)
	_ = res.Decode(b, 1, dst)
	fmt.Println(bytes.Equal(dst, edited), len(res.Page(b, 1).Data), "patch bytes")
	// Output:
	// {0 0} raw
	// {1 0} shared
	// {1 1} patched
	// {1 2} zero
	// true 15 patch bytes
}
