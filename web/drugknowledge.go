package web

// The app's whole drug knowledge, in one table: the ingredients it knows
// (RxNorm ingredient RxCUIs), the classes they belong to, the
// interaction pairs between classes, and the allergy classes. It is
// deliberately small; a prescription the table knows nothing about gets
// no warning, and the page says so.
//
// Sources:
//   - Interaction pairs and their member ingredients: the ONC
//     high-priority drug–drug interactions (Phansalkar et al., JAMIA
//     2012;19(5):735–743, Table 2), with ingredient RxCUIs from
//     dbmi-pitt/public-PDDI-analysis (FDA→RxNorm mapping), as restated
//     in /work/shared/reference/clinical-knowledge.md §(a). The row
//     number of that table is kept in each pair.
//   - Allergy classes (penicillins, cephalosporins, sulfonamide
//     antibiotics, NSAIDs, opioids, ACE inhibitors) are not in that
//     file: they are the drug classes of standard pharmacology
//     references, with RxNorm ingredient RxCUIs given from common use and
//     marked "check" in the reference file's sense (not re-verified
//     against a machine-readable RxNorm release). Matching also goes by
//     ingredient name, so a wrong RxCUI cannot hide a match by name.

// ingredient is an RxNorm ingredient (term type IN).
type ingredient struct {
	Name  string // lower case, as it appears in drug names
	RxCUI string
}

// drugClass is a named set of ingredients.
type drugClass struct {
	Name    string
	Members []ingredient
}

func ing(name, rxcui string) ingredient { return ingredient{name, rxcui} }

var (
	maoInhibitors = drugClass{"MAO inhibitors", []ingredient{ing("tranylcypromine", "10734"), ing("phenelzine", "8123"),
		ing("isocarboxazid", "6011"), ing("selegiline", "9639"), ing("procarbazine", "8702"), ing("moclobemide", "30121")}}
	sympathomimetics = drugClass{"amphetamine-type sympathomimetics", []ingredient{ing("amphetamine", "725"), ing("dextroamphetamine", "3288"),
		ing("methylphenidate", "6901"), ing("dexmethylphenidate", "352372"), ing("lisdexamfetamine", "700810"), ing("methamphetamine", "6816"),
		ing("phentermine", "8152"), ing("pseudoephedrine", "8896"), ing("atomoxetine", "38400"), ing("benzphetamine", "1422"),
		ing("diethylpropion", "3389"), ing("phendimetrazine", "33272")}}
	ppis = drugClass{"proton-pump inhibitors", []ingredient{ing("omeprazole", "7646"), ing("esomeprazole", "283742"), ing("lansoprazole", "17128"),
		ing("dexlansoprazole", "816346"), ing("pantoprazole", "40790"), ing("rabeprazole", "114979")}}
	thiopurines                 = drugClass{"thiopurines", []ingredient{ing("azathioprine", "1256"), ing("mercaptopurine", "103")}}
	febuxostat                  = drugClass{"febuxostat", []ingredient{ing("febuxostat", "73689")}}
	serotonergicAntidepressants = drugClass{"SSRIs/SNRIs", []ingredient{ing("fluoxetine", "4493"), ing("paroxetine", "32937"), ing("sertraline", "36437"),
		ing("citalopram", "2556"), ing("escitalopram", "321988"), ing("fluvoxamine", "42355"), ing("venlafaxine", "39786"),
		ing("desvenlafaxine", "734064"), ing("duloxetine", "72625"), ing("milnacipran", "588250"), ing("nefazodone", "31565")}}
	irinotecan         = drugClass{"irinotecan", []ingredient{ing("irinotecan", "51499")}}
	proteaseInhibitors = drugClass{"protease inhibitors", []ingredient{ing("ritonavir", "85762"), ing("atazanavir", "343047"), ing("darunavir", "460132"),
		ing("lopinavir", "195088"), ing("saquinavir", "83395"), ing("nelfinavir", "134527"), ing("indinavir", "114289"),
		ing("fosamprenavir", "358262"), ing("amprenavir", "228656"), ing("tipranavir", "190548")}}
	// cyp3a4Inhibitors is the union the ONC rows 5, 11 and 12 name.
	cyp3a4Inhibitors = drugClass{"strong CYP3A4 inhibitors", append([]ingredient{ing("ketoconazole", "6135"), ing("itraconazole", "28031"),
		ing("voriconazole", "121243"), ing("fluconazole", "4450"), ing("clarithromycin", "21212"), ing("erythromycin", "4053"),
		ing("telithromycin", "274786"), ing("nefazodone", "31565")}, proteaseInhibitors.Members...)}
	serotonergicOpioids = drugClass{"serotonergic opioids", []ingredient{ing("meperidine", "6754"), ing("methadone", "6813"), ing("tramadol", "10689"),
		ing("tapentadol", "787390"), ing("fentanyl", "4337"), ing("dextromethorphan", "3289")}}
	tricyclics = drugClass{"tricyclic antidepressants", []ingredient{ing("amitriptyline", "704"), ing("clomipramine", "2597"), ing("desipramine", "3247"),
		ing("doxepin", "3638"), ing("imipramine", "5691"), ing("nortriptyline", "7531"), ing("protriptyline", "8886"), ing("trimipramine", "10834")}}
	qtDrugs = drugClass{"QT-prolonging drugs with known torsades risk", []ingredient{ing("amiodarone", "703"), ing("dofetilide", "49247"),
		ing("sotalol", "9947"), ing("quinidine", "9068"), ing("procainamide", "8700"), ing("disopyramide", "3541"), ing("haloperidol", "5093"),
		ing("pimozide", "8331"), ing("thioridazine", "10502"), ing("methadone", "6813"), ing("citalopram", "2556"), ing("escitalopram", "321988"),
		ing("erythromycin", "4053"), ing("clarithromycin", "21212"), ing("moxifloxacin", "139462"), ing("ondansetron", "26225")}}
	ramelteon        = drugClass{"ramelteon", []ingredient{ing("ramelteon", "596205")}}
	cyp1a2Inhibitors = drugClass{"CYP1A2 inhibitors", []ingredient{ing("fluvoxamine", "42355"), ing("ciprofloxacin", "2551"), ing("ticlopidine", "10594"),
		ing("mexiletine", "6926"), ing("propafenone", "8754"), ing("zileuton", "40575"), ing("amiodarone", "703")}}
	cyp3a4Inducers = drugClass{"strong CYP3A4 inducers", []ingredient{ing("rifampin", "9384"), ing("rifabutin", "55672"), ing("rifapentine", "35617"),
		ing("carbamazepine", "2002"), ing("bosentan", "75207")}}
	simvaLova               = drugClass{"simvastatin/lovastatin", []ingredient{ing("simvastatin", "36567"), ing("lovastatin", "6472")}}
	cyp3a4InhibitorsStatins = drugClass{"CYP3A4 inhibitors", append(append([]ingredient{}, cyp3a4Inhibitors.Members...),
		ing("verapamil", "11170"), ing("diltiazem", "3443"), ing("amiodarone", "703"))}
	ergots = drugClass{"ergot alkaloids", []ingredient{ing("ergotamine", "4025"), ing("dihydroergotamine", "3418"), ing("methylergonovine", "6883"),
		ing("ergonovine", "4021")}}
	tizanidine      = drugClass{"tizanidine", []ingredient{ing("tizanidine", "57258")}}
	tranylcypromine = drugClass{"tranylcypromine", []ingredient{ing("tranylcypromine", "10734")}}
	procarbazine    = drugClass{"procarbazine", []ingredient{ing("procarbazine", "8702")}}
	triptans        = drugClass{"MAO-A-metabolised triptans", []ingredient{ing("sumatriptan", "37418"), ing("rizatriptan", "88014"), ing("zolmitriptan", "135775")}}
	maoiTriptans    = drugClass{"MAO inhibitors", append(append([]ingredient{}, maoInhibitors.Members...), ing("methylene blue", "6878"))}
)

// interaction is an ONC high-priority pair: always interrupt the
// prescriber.
type interaction struct {
	ONCRow         int
	Object, Precip drugClass
	Why            string
}

var interactions = []interaction{
	{1, sympathomimetics, maoInhibitors, "risk of hypertensive crisis"},
	{2, drugClass{"atazanavir", []ingredient{ing("atazanavir", "343047")}}, ppis, "loss of atazanavir absorption (HIV treatment failure)"},
	{3, thiopurines, febuxostat, "xanthine-oxidase block: thiopurine marrow toxicity"},
	{4, serotonergicAntidepressants, maoInhibitors, "risk of serotonin syndrome"},
	{5, irinotecan, cyp3a4Inhibitors, "irinotecan (SN-38) toxicity"},
	{6, serotonergicOpioids, maoInhibitors, "risk of serotonin syndrome or excitatory reactions"},
	{7, tricyclics, maoInhibitors, "risk of serotonin syndrome or hypertensive reactions"},
	{8, qtDrugs, qtDrugs, "additive QT prolongation (torsades de pointes)"},
	{9, ramelteon, cyp1a2Inhibitors, "large increase in ramelteon exposure"},
	{10, proteaseInhibitors, cyp3a4Inducers, "loss of antiviral effect and resistance"},
	{11, simvaLova, cyp3a4InhibitorsStatins, "myopathy and rhabdomyolysis"},
	{12, ergots, cyp3a4Inhibitors, "ergotism and ischaemia"},
	{13, tizanidine, cyp1a2Inhibitors, "hypotension and sedation"},
	{14, tranylcypromine, procarbazine, "additive MAO inhibition"},
	{15, triptans, maoiTriptans, "serotonin toxicity and triptan accumulation"},
}

// allergyClass is a class of drugs an allergy to any member (or to the
// class by name) is taken to cover; Related are classes with known
// cross-reactivity, warned about at a lower level.
type allergyClass struct {
	drugClass
	Names   []string // words in an allergy's substance that name the class
	Related []string // names of related classes
}

var allergyClasses = []allergyClass{
	{drugClass{"penicillins", []ingredient{ing("penicillin g", "7980"), ing("penicillin v", "7984"), ing("amoxicillin", "723"),
		ing("ampicillin", "733"), ing("dicloxacillin", "3356"), ing("nafcillin", "7233"), ing("oxacillin", "7773"), ing("piperacillin", "8339")}},
		[]string{"penicillin", "penicillins"}, []string{"cephalosporins"}},
	{drugClass{"cephalosporins", []ingredient{ing("cephalexin", "2231"), ing("cefazolin", "2180"), ing("ceftriaxone", "2193"),
		ing("cefuroxime", "2194"), ing("cefdinir", "25037")}},
		[]string{"cephalosporin", "cephalosporins"}, []string{"penicillins"}},
	{drugClass{"sulfonamide antibiotics", []ingredient{ing("sulfamethoxazole", "10180"), ing("sulfadiazine", "10171")}},
		[]string{"sulfa", "sulfonamide", "sulfonamides"}, nil},
	{drugClass{"NSAIDs", []ingredient{ing("aspirin", "1191"), ing("ibuprofen", "5640"), ing("naproxen", "7258"), ing("diclofenac", "3355"),
		ing("celecoxib", "140587"), ing("ketorolac", "35827"), ing("meloxicam", "41493")}},
		[]string{"nsaid", "nsaids"}, nil},
	{drugClass{"opioids", []ingredient{ing("codeine", "2670"), ing("morphine", "7052"), ing("hydrocodone", "5489"), ing("oxycodone", "7804"),
		ing("hydromorphone", "3423"), ing("tramadol", "10689")}},
		[]string{"opioid", "opioids", "opiate", "opiates"}, nil},
	{drugClass{"ACE inhibitors", []ingredient{ing("lisinopril", "29046"), ing("enalapril", "3827"), ing("ramipril", "35296"),
		ing("benazepril", "18867"), ing("captopril", "1998")}},
		[]string{"ace inhibitor", "ace inhibitors"}, nil},
}
