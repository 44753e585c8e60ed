package synth

import (
	"fmt"
	"strconv"
)

// Common given names and surnames; a name with a number appended would
// look machine-made, so combinations repeat in large populations, as
// real names do.
var (
	femaleNames = []string{"Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen",
		"Lisa", "Nancy", "Betty", "Sandra", "Margaret", "Ashley", "Kimberly", "Emily", "Donna", "Michelle",
		"Carol", "Amanda", "Melissa", "Deborah", "Stephanie", "Rebecca", "Sharon", "Laura", "Cynthia", "Amy",
		"Kathleen", "Angela", "Shirley", "Brenda", "Emma", "Anna", "Pamela", "Nicole", "Samantha", "Katherine",
		"Olivia", "Sophia", "Isabella", "Ava", "Mia", "Charlotte", "Amelia", "Harper", "Evelyn", "Abigail",
		"Maria", "Rosa", "Guadalupe", "Lucia", "Mei", "Aisha", "Priya", "Fatima", "Grace", "Hannah"}
	maleNames = []string{"James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph", "Thomas", "Christopher",
		"Charles", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven", "Andrew", "Paul", "Joshua",
		"Kenneth", "Kevin", "Brian", "George", "Timothy", "Ronald", "Jason", "Edward", "Jeffrey", "Ryan",
		"Jacob", "Gary", "Nicholas", "Eric", "Jonathan", "Stephen", "Larry", "Justin", "Scott", "Brandon",
		"Liam", "Noah", "Oliver", "Elijah", "Lucas", "Mason", "Logan", "Ethan", "Aiden", "Samuel",
		"Jose", "Carlos", "Luis", "Miguel", "Wei", "Hiroshi", "Omar", "Raj", "Tyrone", "Andre"}
	surnames = []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
		"Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
		"Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
		"Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
		"Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts",
		"Gomez", "Phillips", "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes",
		"Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper",
		"Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson",
		"Patel", "Chen", "Wang", "Singh", "Okafor", "Cohen", "Murray", "Sullivan", "O'Brien", "Kowalski"}
	streets = []string{"Maple", "Oak", "Pine", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park", "Main",
		"Church", "High", "Union", "School", "Spring", "River", "Chestnut", "Walnut", "Highland", "Sunset",
		"Meadow", "Forest", "Prospect", "Summer", "Winter", "Pleasant", "Franklin", "Lincoln", "Jefferson", "Mill"}
	streetKinds = []string{"Street", "Avenue", "Road", "Lane", "Drive", "Court", "Way", "Place"}
)

// place is a town with its state and a ZIP code in it.
type place struct{ city, state, zip, area string }

var places = []place{
	{"Springfield", "MA", "01103", "413"}, {"Worcester", "MA", "01608", "508"}, {"Lowell", "MA", "01852", "978"},
	{"Boston", "MA", "02118", "617"}, {"Cambridge", "MA", "02139", "617"}, {"Quincy", "MA", "02169", "617"},
	{"Providence", "RI", "02903", "401"}, {"Hartford", "CT", "06103", "860"}, {"New Haven", "CT", "06510", "203"},
	{"Portland", "ME", "04101", "207"}, {"Manchester", "NH", "03101", "603"}, {"Burlington", "VT", "05401", "802"},
	{"Albany", "NY", "12207", "518"}, {"Syracuse", "NY", "13202", "315"}, {"Pittsfield", "MA", "01201", "413"},
	{"Fall River", "MA", "02720", "508"}, {"Brockton", "MA", "02301", "508"}, {"Nashua", "NH", "03060", "603"},
}

// OMB race and ethnicity categories (US Core race/ethnicity extensions)
// with rough US population shares.
var races = []struct {
	code, display string
	share         float64
}{
	{"2106-3", "White", 0.75},
	{"2054-5", "Black or African American", 0.14},
	{"2028-9", "Asian", 0.07},
	{"1002-5", "American Indian or Alaska Native", 0.03},
	{"2076-8", "Native Hawaiian or Other Pacific Islander", 0.01},
}

// phone returns a number in the 555-01xx block, which is reserved for
// fiction, in the place's area code.
func phone(r *rng, pl place) string {
	return fmt.Sprintf("(%s) 555-01%02d", pl.area, r.intn(100))
}

func streetAddress(r *rng) string {
	return strconv.Itoa(1+r.intn(9899)) + " " + streets[r.intn(len(streets))] + " " + streetKinds[r.intn(len(streetKinds))]
}
