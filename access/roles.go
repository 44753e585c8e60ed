package access

import (
	"slices"
	"strings"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
)

// This file is the role table of docs/security.md ("Who may see what"):
// which interactions each role may use on each resource type. Rows
// (which resources of a type) are decided separately, in policy.go: a
// clinician's patients, a patient's own compartment.

// Groups of resource types the table speaks of. A type in no group is
// reachable by backend-services clients only.
var (
	// demographics: who the patient is and who is around them.
	demographics = []string{"Patient", "RelatedPerson", "Person"}
	// financial: insurance, claims and payment.
	financial = []string{"Account", "ChargeItem", "Claim", "ClaimResponse", "Coverage",
		"CoverageEligibilityRequest", "CoverageEligibilityResponse", "EnrollmentRequest",
		"ExplanationOfBenefit", "Invoice"}
	// scheduling: appointments and the schedules they are booked in.
	scheduling = []string{"Appointment", "AppointmentResponse", "Schedule", "Slot"}
	// directory: the people, places and things of the organizations,
	// which hold no patient data; every user may read them.
	directory = []string{"Practitioner", "PractitionerRole", "Organization", "OrganizationAffiliation",
		"Location", "HealthcareService", "Endpoint", "InsurancePlan", "Medication", "MedicationKnowledge",
		"Substance"}
	// definitional: conformance and knowledge resources (value sets,
	// questionnaires, search parameters, …); every user may read them.
	definitional = []string{"ActivityDefinition", "CapabilityStatement", "CatalogEntry",
		"ChargeItemDefinition", "CodeSystem", "CompartmentDefinition", "ConceptMap", "DeviceDefinition",
		"EffectEvidenceSynthesis", "EventDefinition", "Evidence", "EvidenceVariable", "ExampleScenario",
		"GraphDefinition", "ImplementationGuide", "Library", "Measure", "MessageDefinition", "NamingSystem",
		"ObservationDefinition", "OperationDefinition", "PlanDefinition", "Questionnaire",
		"ResearchDefinition", "ResearchElementDefinition", "RiskEvidenceSynthesis", "SearchParameter",
		"SpecimenDefinition", "StructureDefinition", "StructureMap", "TerminologyCapabilities", "TestScript",
		"ValueSet"}
	// nursing: the clinical types nurses chart (vitals, administrations,
	// immunizations, allergies, nursing notes and care plans, tasks).
	nursing = []string{"Observation", "Procedure", "MedicationAdministration", "Immunization",
		"AllergyIntolerance", "Flag", "CarePlan", "Goal", "QuestionnaireResponse", "DocumentReference",
		"Communication", "CommunicationRequest", "Task", "Specimen", "Encounter"}
	// notShared: types in the Patient compartment that are not clinical
	// charting: kept out of "clinical" below.
	notShared = []string{"AuditEvent", "Provenance", "Group", "Consent", "Schedule"}
)

// clinical is every type of the Patient compartment (plus Device, which
// names its patient) that is not demographics, financial, scheduling or
// in notShared: the chart.
var clinical = func() []string {
	var out []string
	for _, t := range fhir.ResourceTypes() {
		if len(fhir.CompartmentParams("Patient", t)) == 0 && t != "Device" {
			continue
		}
		if slices.Contains(demographics, t) || slices.Contains(financial, t) ||
			slices.Contains(scheduling, t) || slices.Contains(notShared, t) {
			continue
		}
		out = append(out, t)
	}
	return out
}()

// grant is one line of the role table: these letters on these types.
type grant struct {
	letters string
	types   []string
}

// roleTable is the table of docs/security.md. Later lines add to earlier
// ones; a type no line names is denied.
var roleTable = map[hale.Role][]grant{
	hale.RolePhysician: {
		{"cruds", clinical},
		{"crus", demographics},
		{"cruds", []string{"Appointment", "AppointmentResponse"}},
		// Schedule: the clinician app books against the provider's
		// Schedule (its version is the booking lock, docs/web.md).
		{"crus", []string{"Schedule"}},
		{"rs", []string{"Slot"}},
		{"crus", []string{"Consent"}},
		{"rs", financial},
		{"rs", []string{"Provenance"}},
		{"rs", directory},
		{"rs", definitional},
		// Binary and Group are visible through what they stand for
		// (proxy.go) and never searched by users.
		{"crud", []string{"Binary"}},
		{"r", []string{"Group"}},
	},
	hale.RoleNurse: {
		{"rs", clinical},
		{"cru", nursing},
		{"rus", demographics},
		{"rus", []string{"Appointment", "AppointmentResponse"}},
		{"rs", []string{"Schedule", "Slot", "Consent", "Provenance"}},
		{"rs", directory},
		{"rs", definitional},
		{"cru", []string{"Binary"}},
		{"r", []string{"Group"}},
	},
	hale.RoleFrontDesk: {
		{"crus", demographics},
		{"crus", scheduling},
		{"crus", []string{"Coverage", "CoverageEligibilityRequest", "Account"}},
		{"rs", []string{"CoverageEligibilityResponse"}},
		{"crus", []string{"Encounter", "Consent"}},
		{"rs", directory},
		{"rs", definitional},
	},
	hale.RoleBilling: {
		{"rs", []string{"Patient", "RelatedPerson", "Encounter", "Appointment", "Schedule", "Slot"}},
		{"crus", financial},
		{"rs", directory},
		{"rs", definitional},
	},
	hale.RoleAdmin: {
		{"cruds", directory},
		{"cruds", definitional},
		{"cruds", []string{"Schedule", "Slot", "Subscription"}},
		{"rs", []string{"AuditEvent"}},
	},
	hale.RolePatient: {
		{"rs", clinical},
		{"rs", demographics},
		{"rs", financial},
		{"rs", scheduling},
		{"rs", []string{"Consent", "Provenance"}},
		{"rs", directory},
		{"rs", definitional},
		{"r", []string{"Binary"}},
		// Patients answer intake forms and write to their clinicians;
		// neither can change what a clinician recorded.
		{"cru", []string{"QuestionnaireResponse"}},
		{"c", []string{"Communication"}},
	},
}

// systemDenied are the types a backend-services client may not write:
// the audit trail is written by Hale alone.
var systemDenied = []string{"AuditEvent"}

// roleAllows reports whether role may use interaction l on typ at all.
func roleAllows(role hale.Role, typ string, l byte) bool {
	if role == hale.RoleSystem {
		return fhir.IsResourceType(typ) && (l == Read || l == Search || !slices.Contains(systemDenied, typ))
	}
	for _, g := range roleTable[role] {
		if strings.IndexByte(g.letters, l) >= 0 && slices.Contains(g.types, typ) {
			return true
		}
	}
	return false
}

// RoleAllows reports whether a user of role may use interaction l (one
// of Create, Read, Update, Delete, Search) on resource type typ at all,
// before rows and scopes are considered. It is the table of
// docs/security.md, for screens that hide what a role cannot do.
func RoleAllows(role hale.Role, typ string, l byte) bool { return roleAllows(role, typ, l) }

// SMARTRoles is the role table as the SMART scopes a user's app may be
// granted (auth.RolePolicy): for each type a role may use, "user/T.…"
// (for patients "patient/T.…") with the letters of the table in c r u d
// s order. The access policy then applies the rows as well, so an app
// never reaches beyond its user.
type SMARTRoles struct{}

// RoleScopes returns the scopes role's apps may be granted; none for
// the system role, whose clients are registered with their scopes.
func (SMARTRoles) RoleScopes(role hale.Role) []string {
	if role == hale.RoleSystem {
		return nil
	}
	letters := map[string]string{}
	var types []string
	for _, g := range roleTable[role] {
		for _, t := range g.types {
			if _, seen := letters[t]; !seen {
				types = append(types, t)
			}
			letters[t] += g.letters
		}
	}
	ctx := "user/"
	if role == hale.RolePatient {
		ctx = "patient/"
	}
	var out []string
	for _, t := range types {
		l := ""
		for _, c := range "cruds" {
			if strings.ContainsRune(letters[t], c) {
				l += string(c)
			}
		}
		out = append(out, ctx+t+"."+l)
	}
	return out
}
