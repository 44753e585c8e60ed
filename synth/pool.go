package synth

import (
	"fmt"
	"strconv"
)

// The shared pool of each block of BlockSize patients: a primary-care
// clinic, a hospital, and their clinicians.
const (
	poolPCPs          = 8 // primary care physicians: practitioner 0-7
	pracED            = 8 // emergency physicians: 8 and 9
	pracHospitalist   = 10
	pracNephrology    = 11
	poolPractitioners = 12
)

var pracRoles = [poolPractitioners]string{
	"Family Medicine", "Family Medicine", "Internal Medicine", "Internal Medicine", "Family Medicine", "Pediatrics", "Pediatrics", "Internal Medicine",
	"Emergency Medicine", "Emergency Medicine", "Hospital Medicine", "Nephrology",
}

func (g *Generator) orgID(block int, kind string) string {
	return g.prefix + "-b" + strconv.Itoa(block) + "-" + kind
}

func (g *Generator) pracID(block, k int) string {
	return g.prefix + "-b" + strconv.Itoa(block) + "-pr" + strconv.Itoa(k)
}

// pool returns block b's Organizations and Practitioners.
func (g *Generator) pool(b int) []Resource {
	r := newRNG(g.opt.Seed, 2, uint64(b))
	pl := places[r.intn(len(places))] // the first draw: see blockPlace
	town := pl.city
	out := make([]Resource, 0, 2+poolPractitioners)
	for _, o := range []struct{ kind, name string }{
		{"clinic", town + " Family Health Center"},
		{"hospital", town + " General Hospital"},
	} {
		id := g.orgID(b, o.kind)
		out = append(out, Resource{"Organization", id, obj{
			"resourceType": "Organization",
			"id":           id,
			"identifier": []any{obj{
				"system": orgSystem,
				"value":  id,
			}},
			"active":  true,
			"type":    []any{code{sysOrgType, "prov", "Healthcare Provider"}.concept()},
			"name":    o.name,
			"telecom": []any{obj{"system": "phone", "value": phone(r, pl), "use": "work"}},
			"address": []any{obj{"line": []any{streetAddress(r)}, "city": pl.city, "state": pl.state, "postalCode": pl.zip, "country": "US"}},
		}})
	}
	for k := 0; k < poolPractitioners; k++ {
		id := g.pracID(b, k)
		female := r.chance(0.5)
		given := maleNames[r.intn(len(maleNames))]
		gender := "male"
		if female {
			given, gender = femaleNames[r.intn(len(femaleNames))], "female"
		}
		family := surnames[r.intn(len(surnames))]
		// NPIs start with 1 or 2; a leading 9 can never be a real one.
		npi := fmt.Sprintf("9%09d", mix(uint64(g.opt.Seed)^uint64(b)<<8^uint64(k))%1_000_000_000)
		out = append(out, Resource{"Practitioner", id, obj{
			"resourceType": "Practitioner",
			"id":           id,
			"identifier":   []any{obj{"system": sysNPI, "value": npi}},
			"active":       true,
			"name": []any{obj{
				"use": "official", "family": family, "given": []any{given}, "prefix": []any{"Dr."},
				"text": "Dr. " + given + " " + family,
			}},
			"telecom": []any{obj{"system": "phone", "value": phone(r, pl), "use": "work"}},
			"address": []any{obj{"line": []any{streetAddress(r)}, "city": pl.city, "state": pl.state, "postalCode": pl.zip, "country": "US"}},
			"gender":  gender,
			"qualification": []any{obj{
				"code": obj{"text": "MD, " + pracRoles[k]},
			}},
		}})
	}
	return out
}

// blockPlace is the town of block b's clinic, where most of its patients
// live.
func (g *Generator) blockPlace(b int) place {
	return places[newRNG(g.opt.Seed, 2, uint64(b)).intn(len(places))]
}
