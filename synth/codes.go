package synth

// The terminology the generator uses. Codes are standard public codes
// (LOINC, SNOMED CT, RxNorm, CVX, ICD-10-CM, UCUM); the displays are short
// labels of our own or the code systems' published names.

const (
	sysLOINC     = "http://loinc.org"
	sysSNOMED    = "http://snomed.info/sct"
	sysRxNorm    = "http://www.nlm.nih.gov/research/umls/rxnorm"
	sysCVX       = "http://hl7.org/fhir/sid/cvx"
	sysICD10CM   = "http://hl7.org/fhir/sid/icd-10-cm"
	sysUCUM      = "http://unitsofmeasure.org"
	sysNPI       = "http://hl7.org/fhir/sid/us-npi"
	sysOMB       = "urn:oid:2.16.840.1.113883.6.238"
	sysActCode   = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	sysObsCat    = "http://terminology.hl7.org/CodeSystem/observation-category"
	sysInterp    = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
	sysCondClin  = "http://terminology.hl7.org/CodeSystem/condition-clinical"
	sysCondVer   = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	sysCondCat   = "http://terminology.hl7.org/CodeSystem/condition-category"
	sysAllerClin = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
	sysAllerVer  = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
	sysV20203    = "http://terminology.hl7.org/CodeSystem/v2-0203"
	sysV20074    = "http://terminology.hl7.org/CodeSystem/v2-0074"
	sysPartType  = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	sysMarital   = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
	sysOrgType   = "http://terminology.hl7.org/CodeSystem/organization-type"
	sysDischarge = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
	sysLang      = "urn:ietf:bcp:47"

	// mrnSystem is under HL7's example OID root (2.16.840.1.113883.19),
	// which no real organisation uses: the identifiers are synthetic.
	mrnSystem = "urn:oid:2.16.840.1.113883.19.5.99"
	orgSystem = "urn:oid:2.16.840.1.113883.19.5.98"

	extRace      = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
	extEthnicity = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
	extBirthSex  = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
)

// code is one coded concept.
type code struct{ system, code, display string }

func sct(c, d string) code   { return code{sysSNOMED, c, d} }
func loinc(c, d string) code { return code{sysLOINC, c, d} }
func rx(c, d string) code    { return code{sysRxNorm, c, d} }

// condKind names a condition the generator models.
type condKind int

const (
	cHypertension condKind = iota
	cDiabetes
	cPrediabetes
	cHyperlipidemia
	cAsthma
	cCOPD
	cCKD3
	cCKD4
	cESRD
	cDepression
	cAnxiety
	cHypothyroidism
	cCAD
	cAFib
	cOsteoarthritis
	cObesity
	// acute
	cPharyngitis
	cStrep
	cBronchitis
	cOtitis
	cUTI
	cSinusitis
	cSprain
	cURI
	cCOVID
	cPneumonia
	cLaceration
	cChestPain
	cAsthmaAttack
	numConds
)

// condDef is a condition's coding. icd is ICD-10-CM; icdOld, when set, is
// the code in use before icdSince (ICD-10-CM adds codes every October).
type condDef struct {
	snomed   code
	icd      code
	icdOld   code
	icdSince string // YYYY-MM-DD
	chronic  bool
}

var conds = [numConds]condDef{
	cHypertension:   {snomed: sct("59621000", "Essential hypertension (disorder)"), icd: code{sysICD10CM, "I10", "Essential (primary) hypertension"}, chronic: true},
	cDiabetes:       {snomed: sct("44054006", "Diabetes mellitus type 2 (disorder)"), icd: code{sysICD10CM, "E11.9", "Type 2 diabetes mellitus without complications"}, chronic: true},
	cPrediabetes:    {snomed: sct("714628002", "Prediabetes (finding)"), icd: code{sysICD10CM, "R73.03", "Prediabetes"}, chronic: true},
	cHyperlipidemia: {snomed: sct("55822004", "Hyperlipidemia (disorder)"), icd: code{sysICD10CM, "E78.5", "Hyperlipidemia, unspecified"}, chronic: true},
	cAsthma:         {snomed: sct("195967001", "Asthma (disorder)"), icd: code{sysICD10CM, "J45.909", "Unspecified asthma, uncomplicated"}, chronic: true},
	cCOPD:           {snomed: sct("13645005", "Chronic obstructive lung disease (disorder)"), icd: code{sysICD10CM, "J44.9", "Chronic obstructive pulmonary disease, unspecified"}, chronic: true},
	cCKD3: {snomed: sct("433144002", "Chronic kidney disease stage 3 (disorder)"), icd: code{sysICD10CM, "N18.30", "Chronic kidney disease, stage 3 unspecified"},
		icdOld: code{sysICD10CM, "N18.3", "Chronic kidney disease, stage 3 (moderate)"}, icdSince: "2020-10-01", chronic: true},
	cCKD4: {snomed: sct("431857002", "Chronic kidney disease stage 4 (disorder)"), icd: code{sysICD10CM, "N18.4", "Chronic kidney disease, stage 4 (severe)"}, chronic: true},
	cESRD: {snomed: sct("46177005", "End-stage renal disease (disorder)"), icd: code{sysICD10CM, "N18.6", "End stage renal disease"}, chronic: true},
	cDepression: {snomed: sct("35489007", "Depressive disorder (disorder)"), icd: code{sysICD10CM, "F32.A", "Depression, unspecified"},
		icdOld: code{sysICD10CM, "F32.9", "Major depressive disorder, single episode, unspecified"}, icdSince: "2021-10-01", chronic: true},
	cAnxiety:        {snomed: sct("197480006", "Anxiety disorder (disorder)"), icd: code{sysICD10CM, "F41.9", "Anxiety disorder, unspecified"}, chronic: true},
	cHypothyroidism: {snomed: sct("40930008", "Hypothyroidism (disorder)"), icd: code{sysICD10CM, "E03.9", "Hypothyroidism, unspecified"}, chronic: true},
	cCAD:            {snomed: sct("53741008", "Coronary arteriosclerosis (disorder)"), icd: code{sysICD10CM, "I25.10", "Atherosclerotic heart disease of native coronary artery without angina pectoris"}, chronic: true},
	cAFib:           {snomed: sct("49436004", "Atrial fibrillation (disorder)"), icd: code{sysICD10CM, "I48.91", "Unspecified atrial fibrillation"}, chronic: true},
	cOsteoarthritis: {snomed: sct("396275006", "Osteoarthritis (disorder)"), icd: code{sysICD10CM, "M19.90", "Unspecified osteoarthritis, unspecified site"}, chronic: true},
	cObesity:        {snomed: sct("414916001", "Obesity (disorder)"), icd: code{sysICD10CM, "E66.9", "Obesity, unspecified"}, chronic: true},

	cPharyngitis:  {snomed: sct("195662009", "Acute viral pharyngitis (disorder)"), icd: code{sysICD10CM, "J02.9", "Acute pharyngitis, unspecified"}},
	cStrep:        {snomed: sct("43878008", "Streptococcal sore throat (disorder)"), icd: code{sysICD10CM, "J02.0", "Streptococcal pharyngitis"}},
	cBronchitis:   {snomed: sct("10509002", "Acute bronchitis (disorder)"), icd: code{sysICD10CM, "J20.9", "Acute bronchitis, unspecified"}},
	cOtitis:       {snomed: sct("65363002", "Otitis media (disorder)"), icd: code{sysICD10CM, "H66.90", "Otitis media, unspecified, unspecified ear"}},
	cUTI:          {snomed: sct("68566005", "Urinary tract infectious disease (disorder)"), icd: code{sysICD10CM, "N39.0", "Urinary tract infection, site not specified"}},
	cSinusitis:    {snomed: sct("444814009", "Viral sinusitis (disorder)"), icd: code{sysICD10CM, "J01.90", "Acute sinusitis, unspecified"}},
	cSprain:       {snomed: sct("44465007", "Sprain of ankle (disorder)"), icd: code{sysICD10CM, "S93.409A", "Sprain of unspecified ligament of unspecified ankle, initial encounter"}},
	cURI:          {snomed: sct("54150009", "Upper respiratory infection (disorder)"), icd: code{sysICD10CM, "J06.9", "Acute upper respiratory infection, unspecified"}},
	cCOVID:        {snomed: sct("840539006", "Disease caused by severe acute respiratory syndrome coronavirus 2 (disorder)"), icd: code{sysICD10CM, "U07.1", "COVID-19"}},
	cPneumonia:    {snomed: sct("385093006", "Community acquired pneumonia (disorder)"), icd: code{sysICD10CM, "J18.9", "Pneumonia, unspecified organism"}},
	cLaceration:   {snomed: sct("283371005", "Laceration of forearm (disorder)"), icd: code{sysICD10CM, "S51.819A", "Laceration without foreign body of unspecified forearm, initial encounter"}},
	cChestPain:    {snomed: sct("29857009", "Chest pain (finding)"), icd: code{sysICD10CM, "R07.9", "Chest pain, unspecified"}},
	cAsthmaAttack: {snomed: sct("281239006", "Exacerbation of asthma (disorder)"), icd: code{sysICD10CM, "J45.901", "Unspecified asthma with (acute) exacerbation"}},
}

// medDef is a medication the generator prescribes. RxNorm clinical-drug
// (SCD) codes where the product is fixed, ingredient (IN) codes where the
// strength varies in practice.
type medDef struct {
	rx      code
	class   medClass
	dose    float64 // per administration
	unit    string  // UCUM code of dose
	perDay  int     // administrations per day; 0: as needed
	route   code
	sig     string
	chronic bool
}

type medClass int

const (
	mMetformin medClass = iota + 1
	mInsulin
	mACE
	mThiazide
	mCCB
	mStatin
	mSABA
	mICS
	mLAMA
	mSSRI
	mThyroid
	mAspirin
	mBetaBlocker
	mNitrate
	mAnticoagWarfarin
	mAnticoagDOAC
	mESA
	mAnalgesic
	mNSAID
	mAntibiotic
	mAntihistamine
	mEpinephrine
	mSteroid
)

var (
	routeOral    = sct("26643006", "Oral route")
	routeInhaled = sct("447694001", "Respiratory tract route (qualifier value)")
	routeSubcut  = sct("34206005", "Subcutaneous route")
	routeIM      = sct("78421000", "Intramuscular route")
)

var (
	medMetformin     = &medDef{rx("861007", "metformin hydrochloride 500 MG Oral Tablet"), mMetformin, 1, "{tbl}", 2, routeOral, "1 tablet by mouth twice daily with meals", true}
	medInsulin       = &medDef{rx("274783", "insulin glargine"), mInsulin, 20, "[iU]", 1, routeSubcut, "20 units under the skin at bedtime", true}
	medLisinopril    = &medDef{rx("314076", "lisinopril 10 MG Oral Tablet"), mACE, 1, "{tbl}", 1, routeOral, "1 tablet by mouth daily", true}
	medHCTZ          = &medDef{rx("310798", "hydrochlorothiazide 25 MG Oral Tablet"), mThiazide, 1, "{tbl}", 1, routeOral, "1 tablet by mouth every morning", true}
	medAmlodipine    = &medDef{rx("197361", "amlodipine 5 MG Oral Tablet"), mCCB, 1, "{tbl}", 1, routeOral, "1 tablet by mouth daily", true}
	medAtorvastatin  = &medDef{rx("83367", "atorvastatin"), mStatin, 20, "mg", 1, routeOral, "20 mg by mouth at bedtime", true}
	medSimvastatin   = &medDef{rx("36567", "simvastatin"), mStatin, 20, "mg", 1, routeOral, "20 mg by mouth at bedtime", true}
	medAlbuterol     = &medDef{rx("745679", "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"), mSABA, 2, "{puff}", 0, routeInhaled, "2 puffs every 4 to 6 hours as needed for wheezing", true}
	medFluticasone   = &medDef{rx("895994", "120 ACTUAT fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler"), mICS, 2, "{puff}", 2, routeInhaled, "2 puffs twice daily; rinse mouth after use", true}
	medTiotropium    = &medDef{rx("69120", "tiotropium"), mLAMA, 2, "{puff}", 1, routeInhaled, "2 inhalations once daily", true}
	medSertraline    = &medDef{rx("36437", "sertraline"), mSSRI, 50, "mg", 1, routeOral, "50 mg by mouth daily", true}
	medCitalopram    = &medDef{rx("2556", "citalopram"), mSSRI, 20, "mg", 1, routeOral, "20 mg by mouth daily", true}
	medFluoxetine    = &medDef{rx("4493", "fluoxetine"), mSSRI, 20, "mg", 1, routeOral, "20 mg by mouth every morning", true}
	medEscitalopram  = &medDef{rx("321988", "escitalopram"), mSSRI, 10, "mg", 1, routeOral, "10 mg by mouth daily", true}
	medLevothyrox    = &medDef{rx("966222", "levothyroxine sodium 0.075 MG Oral Tablet"), mThyroid, 1, "{tbl}", 1, routeOral, "1 tablet by mouth every morning on an empty stomach", true}
	medAspirin       = &medDef{rx("1191", "aspirin"), mAspirin, 81, "mg", 1, routeOral, "81 mg by mouth daily", true}
	medMetoprolol    = &medDef{rx("6918", "metoprolol"), mBetaBlocker, 50, "mg", 1, routeOral, "50 mg by mouth daily", true}
	medNitro         = &medDef{rx("4917", "nitroglycerin"), mNitrate, 0.4, "mg", 0, sct("37839007", "Sublingual route"), "0.4 mg under the tongue as needed for chest pain", true}
	medWarfarin      = &medDef{rx("11289", "warfarin"), mAnticoagWarfarin, 5, "mg", 1, routeOral, "5 mg by mouth daily or as directed by INR", true}
	medApixaban      = &medDef{rx("1364430", "apixaban"), mAnticoagDOAC, 5, "mg", 2, routeOral, "5 mg by mouth twice daily", true}
	medEpoetin       = &medDef{rx("105694", "epoetin alfa"), mESA, 4000, "[iU]", 0, routeSubcut, "4000 units at dialysis three times weekly", true}
	medAcetaminophen = &medDef{rx("313782", "acetaminophen 325 MG Oral Tablet"), mAnalgesic, 2, "{tbl}", 0, routeOral, "2 tablets by mouth every 6 hours as needed for pain", false}
	medNaproxen      = &medDef{rx("198014", "naproxen 500 MG Oral Tablet"), mNSAID, 1, "{tbl}", 2, routeOral, "1 tablet by mouth twice daily with food", false}
	medIbuprofen     = &medDef{rx("310965", "ibuprofen 200 MG Oral Tablet"), mNSAID, 2, "{tbl}", 0, routeOral, "2 tablets by mouth every 6 hours as needed for pain", false}
	medAmoxicillin   = &medDef{rx("308191", "amoxicillin 500 MG Oral Capsule"), mAntibiotic, 1, "{cap}", 3, routeOral, "1 capsule by mouth three times daily for 10 days", false}
	medAzithro       = &medDef{rx("18631", "azithromycin"), mAntibiotic, 250, "mg", 1, routeOral, "500 mg on day 1, then 250 mg daily for 4 days", false}
	medNitrofur      = &medDef{rx("7454", "nitrofurantoin"), mAntibiotic, 100, "mg", 2, routeOral, "100 mg by mouth twice daily for 5 days", false}
	medLoratadine    = &medDef{rx("311372", "loratadine 10 MG Oral Tablet"), mAntihistamine, 1, "{tbl}", 0, routeOral, "1 tablet by mouth daily as needed for allergy symptoms", true}
	medPrednisone    = &medDef{rx("8640", "prednisone"), mSteroid, 40, "mg", 1, routeOral, "40 mg by mouth daily for 5 days", false}
	medEpinephrine   = &medDef{rx("1870230", "NDA020800 0.3 ML epinephrine 1 MG/ML Auto-Injector"), mEpinephrine, 0.3, "mg", 0, routeIM, "inject 0.3 mg into the thigh for anaphylaxis; call 911", true}
)

// Encounter types (SNOMED CT procedures, as US Core's examples use).
var (
	encCheckUp   = sct("185349003", "Encounter for check up (procedure)")
	encWellChild = sct("410620009", "Well child visit (procedure)")
	encFollowUp  = sct("390906007", "Follow-up encounter (procedure)")
	encProblem   = sct("185347001", "Encounter for problem (procedure)")
	encSymptom   = sct("185345009", "Encounter for symptom (procedure)")
	encED        = sct("50849002", "Emergency room admission (procedure)")
	encInpatient = sct("32485007", "Hospital admission (procedure)")
	encVaccine   = sct("33879002", "Administration of vaccine to produce active immunity (procedure)")
	encDialysis  = sct("302497006", "Hemodialysis (procedure)")
)

// Procedures.
var (
	procThroatCulture = sct("117015009", "Throat culture (procedure)")
	procSuture        = sct("288086009", "Suture open wound (procedure)")
	procChestXray     = sct("399208008", "Plain chest X-ray (procedure)")
	procECG           = sct("29303009", "Electrocardiographic procedure (procedure)")
	procColonoscopy   = sct("73761001", "Colonoscopy (procedure)")
	procMammography   = sct("24623002", "Screening mammography (procedure)")
	procSpirometry    = sct("127783003", "Spirometry (procedure)")
	procMedRec        = sct("430193006", "Medication reconciliation (procedure)")
	procHemodialysis  = sct("302497006", "Hemodialysis (procedure)")
	encProcedure      = sct("371883000", "Outpatient procedure (procedure)")
)

// Vaccines (CVX).
var (
	cvxHepBPed   = code{sysCVX, "08", "Hep B, adolescent or pediatric"}
	cvxDTaP      = code{sysCVX, "20", "DTaP"}
	cvxIPV       = code{sysCVX, "10", "IPV"}
	cvxHib       = code{sysCVX, "49", "Hib (PRP-OMP)"}
	cvxPCV13     = code{sysCVX, "133", "Pneumococcal conjugate PCV 13"}
	cvxPCV20     = code{sysCVX, "216", "Pneumococcal conjugate PCV20"}
	cvxPPSV23    = code{sysCVX, "33", "pneumococcal polysaccharide PPV23"}
	cvxRota      = code{sysCVX, "116", "rotavirus, pentavalent"}
	cvxMMR       = code{sysCVX, "03", "MMR"}
	cvxVaricella = code{sysCVX, "21", "varicella"}
	cvxHepAPed   = code{sysCVX, "83", "Hep A, ped/adol, 2 dose"}
	cvxTdap      = code{sysCVX, "115", "Tdap"}
	cvxTd        = code{sysCVX, "113", "Td (adult) preservative free"}
	cvxHPV9      = code{sysCVX, "165", "HPV9"}
	cvxMenACWY   = code{sysCVX, "114", "meningococcal MCV4P"}
	cvxFlu       = code{sysCVX, "140", "Influenza, seasonal, injectable, preservative free"}
	cvxZoster    = code{sysCVX, "187", "zoster recombinant"}
	cvxCOVID     = code{sysCVX, "208", "COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose"}
)

// Allergies: the substance, its category, and the reactions seen.
type allergyDef struct {
	substance code
	category  string // food, medication, environment
	critical  bool
	reactions []code
	minAge    float64 // age range of onset, years
	maxAge    float64
	p         float64 // prevalence
}

var (
	rxnHives       = sct("247472004", "Wheal (finding)")
	rxnRash        = sct("271807003", "Eruption of skin (disorder)")
	rxnAnaphylaxis = sct("39579001", "Anaphylaxis (disorder)")
	rxnSneezing    = sct("76067001", "Sneezing (finding)")
	rxnDyspnea     = sct("267036007", "Dyspnea (finding)")
	rxnCough       = sct("49727002", "Cough (finding)")
)

var allergyDefs = []allergyDef{
	{rx("7980", "penicillin G"), "medication", false, []code{rxnHives, rxnRash}, 1, 60, 0.06},
	{rx("10180", "sulfamethoxazole"), "medication", false, []code{rxnRash}, 5, 70, 0.02},
	{rx("1191", "aspirin"), "medication", false, []code{rxnHives, rxnDyspnea}, 10, 70, 0.01},
	{sct("762952008", "Peanut (substance)"), "food", true, []code{rxnAnaphylaxis, rxnHives}, 1, 6, 0.02},
	{sct("256259004", "Pollen (substance)"), "environment", false, []code{rxnSneezing, rxnCough}, 3, 40, 0.10},
	{sct("260147004", "House dust mite (organism)"), "environment", false, []code{rxnSneezing, rxnDyspnea}, 2, 30, 0.05},
	{sct("264287008", "Animal dander (substance)"), "environment", false, []code{rxnSneezing, rxnHives}, 2, 40, 0.04},
	{sct("111088007", "Latex (substance)"), "environment", false, []code{rxnRash, rxnHives}, 15, 60, 0.01},
}
