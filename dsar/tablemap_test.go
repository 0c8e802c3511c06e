package dsar_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

func TestTableMapCheck(t *testing.T) {
	ok := dsar.TableMap{Table: "crm.customers", SubjectColumn: "customer_id", Columns: map[string]privguard.DataCategory{"email": "user.contact.email"}, Erase: dsar.EraseMask}
	if err := ok.Check(63); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("c", 64)
	for name, tb := range map[string]dsar.TableMap{
		"SQL in the table":         {Table: "customers; DROP TABLE x", SubjectColumn: "id", Erase: dsar.EraseDelete},
		"twice qualified":          {Table: "a.b.c", SubjectColumn: "id", Erase: dsar.EraseDelete},
		"qualified subject column": {Table: "t", SubjectColumn: "t.id", Erase: dsar.EraseDelete},
		"quoted column":            {Table: "t", SubjectColumn: "id", Columns: map[string]privguard.DataCategory{`e"mail`: "user.contact.email"}, Erase: dsar.EraseDelete},
		"column too long":          {Table: "t", SubjectColumn: "id", Columns: map[string]privguard.DataCategory{long: "user.contact.email"}, Erase: dsar.EraseDelete},
		"unknown erase":            {Table: "t", SubjectColumn: "id", Erase: "shred"},
	} {
		if err := tb.Check(63); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := (dsar.TableMap{Table: "t", SubjectColumn: long, Erase: dsar.EraseDelete}).Check(64); err != nil {
		t.Errorf("a 64-byte name under a 64-byte limit: %v", err)
	}
	cats := dsar.MapCategories([]dsar.TableMap{ok, {Columns: map[string]privguard.DataCategory{"a": "user.contact.email", "b": "user.behavior"}}})
	if !slices.Equal(cats, []privguard.DataCategory{"user.behavior", "user.contact.email"}) {
		t.Errorf("MapCategories = %v", cats)
	}
}
