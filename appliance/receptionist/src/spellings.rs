//! The usual spelling of a name the recogniser spelled by ear.
//!
//! Whisper writes a name it does not know as it sounds: base heard "Priya Natharajan" for
//! Natarajan in every G.722 call of the after-hours scenario. Staff then call back a name that
//! does not exist. With lists of real names (the bundle's optional `surnames` and `first-names`:
//! US Census 2010 surnames, first names from Tzioumis 2018), a heard name that is on the list is
//! kept as heard; one that is not takes the spelling of the listed name that sounds the same
//! (folded alike: ch/k/c, ph/f, z/s, y/i, silent h, doubled letters), the one closest in letters
//! to what was heard when several do. No listed name sounds the same, or two are equally close:
//! kept as heard.
//!
//! Real names can also sound exactly alike: the recogniser heard Lena Park as "Leena Parke".
//! Its choice between such spellings is a guess, so the much more common one is the better bet.
//! The optional homophone tables (`surname-homophones`, `first-name-homophones`, made at bundle
//! build from the 1990 Census lists: same espeak-ng pronunciation, the common spelling at least
//! ten times as frequent, female and male first names kept apart) map the rare spelling to the
//! common one. Fisher and Fischer are not in it: Fisher is under four times as common, too close
//! to override what was heard. The read-back cannot catch this (both sound the same), but a
//! caller who spells the name ("F I S C H E R") always wins (a correction or spelling is never respelled).

use std::collections::HashMap;

use crate::understand::{edit_distance, fold_name};

/// Real spellings of surnames and first names (see the module docs).
#[derive(Debug, Default)]
pub struct NameSpellings {
    surnames: Spellings,
    first: Spellings,
}

#[derive(Debug, Default)]
struct Spellings {
    /// Folded sound → the listed spellings with it, letters only, lower case ("obrien" for
    /// O'Brien: the Census list drops punctuation). A name is listed when it is in its sound's
    /// group.
    by_sound: HashMap<String, Vec<String>>,
    /// A rare spelling → the common one that sounds exactly the same (letters only, lower case).
    homophones: HashMap<String, String>,
}

impl Spellings {
    fn new(list: &str) -> Self {
        let mut s = Spellings::default();
        // A line with a space is no name: the Census tables end in "ALL OTHER NAMES".
        for name in list.lines().map(str::trim).filter(|l| !l.contains(char::is_whitespace)).map(letters).filter(|n| !n.is_empty()) {
            let alike = s.by_sound.entry(fold_name(&name)).or_default();
            if !alike.contains(&name) {
                alike.push(name);
            }
        }
        s
    }

    /// `RARE<TAB>COMMON` lines, as the bundle's homophone tables hold them.
    fn add_homophones(&mut self, table: &str) {
        for (rare, common) in table.lines().filter_map(|l| l.split_once('\t')) {
            let (rare, common) = (letters(rare), letters(common));
            if !rare.is_empty() && !common.is_empty() && rare != common {
                self.homophones.insert(rare, common);
            }
        }
    }

    fn usual(&self, heard: &str) -> Option<String> {
        let key = letters(heard);
        let spelled = self.listed_spelling(&key).unwrap_or_else(|| key.clone());
        // One step only: the tables map to the most common spelling, which maps nowhere.
        let usual = self.homophones.get(&spelled).cloned().unwrap_or(spelled);
        (usual != key).then(|| title_case(&usual))
    }

    /// The listed spelling that sounds like `key` (`key` itself when listed); None when no
    /// listed name sounds the same or two are equally close.
    fn listed_spelling(&self, key: &str) -> Option<String> {
        let alike = self.by_sound.get(&fold_name(key))?;
        if alike.iter().any(|n| n == key) {
            return Some(key.to_string());
        }
        let dist = |n: &String| edit_distance(n, key);
        let best = alike.iter().min_by_key(|n| dist(n))?;
        // Two listed spellings equally close to what was heard: which one is a guess.
        if alike.iter().filter(|n| dist(n) == dist(best)).count() > 1 {
            return None;
        }
        Some(best.clone())
    }

    fn len(&self) -> usize {
        self.by_sound.values().map(Vec::len).sum()
    }
}

impl NameSpellings {
    /// From two lists, one name per line (any case; blank lines ignored).
    pub fn new(surnames: &str, first_names: &str) -> Self {
        NameSpellings { surnames: Spellings::new(surnames), first: Spellings::new(first_names) }
    }

    /// With the homophone tables (`RARE<TAB>COMMON` lines; see the module docs).
    pub fn with_homophones(mut self, surnames: &str, first_names: &str) -> Self {
        self.surnames.add_homophones(surnames);
        self.first.add_homophones(first_names);
        self
    }

    /// The surname as usually spelled, when `heard` is not a listed spelling but sounds like one,
    /// or is the rare spelling of a common homophone.
    pub fn usual_surname(&self, heard: &str) -> Option<String> {
        self.surnames.usual(heard)
    }

    /// The first name as usually spelled (as [`Self::usual_surname`]).
    pub fn usual_first_name(&self, heard: &str) -> Option<String> {
        self.first.usual(heard)
    }

    /// How many surnames and first names are listed.
    pub fn sizes(&self) -> (usize, usize) {
        (self.surnames.len(), self.first.len())
    }

    /// How many rare spellings of surnames and first names have a common homophone.
    pub fn homophone_sizes(&self) -> (usize, usize) {
        (self.surnames.homophones.len(), self.first.homophones.len())
    }
}

fn letters(s: &str) -> String {
    s.chars().filter(|c| c.is_alphabetic()).flat_map(char::to_lowercase).collect()
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists() -> NameSpellings {
        NameSpellings::new("NATARAJAN\nFISHER\nFISCHER\nPARK\nPARRY\nOBRIEN\nGOMES\nGOMEZ\nALL OTHER NAMES\n\n", "LENA\nLEENA\nPRIYA\n")
    }

    #[test]
    fn a_name_spelled_by_ear_takes_the_listed_spelling_that_sounds_the_same() {
        let s = lists();
        assert_eq!(s.usual_surname("Natharajan").as_deref(), Some("Natarajan"));
        assert_eq!(s.usual_surname("Nattarajan").as_deref(), Some("Natarajan"));
    }

    #[test]
    fn a_listed_name_or_one_that_sounds_like_none_is_kept() {
        let s = lists();
        // Listed: kept, whatever the case or punctuation.
        for heard in ["Fisher", "Fischer", "Park", "Parry", "O'Brien", "natarajan"] {
            assert_eq!(s.usual_surname(heard), None, "{heard}");
        }
        assert_eq!(s.usual_first_name("Leena"), None);
        // Sounds like no listed name.
        assert_eq!(s.usual_surname("Blocks"), None);
        assert_eq!(s.usual_surname(""), None);
        assert_eq!(s.usual_surname("Allothernames"), None, "the table's summary row is no name");
        assert_eq!(s.sizes(), (8, 3));
        // A first name is looked up among first names only.
        assert_eq!(s.usual_first_name("Natharajan"), None);
    }

    #[test]
    fn a_rare_spelling_of_a_common_homophone_takes_the_common_one() {
        let s = NameSpellings::new("PARK\nPARKE\nFISHER\nFISCHER\nNATARAJAN\n", "LENA\nLEENA\nLEENAH\nBOBBI\n")
            .with_homophones("PARKE\tPARK\n\nbad line\n", "LEENA\tLENA\n");
        assert_eq!(s.usual_surname("Parke").as_deref(), Some("Park"));
        assert_eq!(s.usual_first_name("Leena").as_deref(), Some("Lena"));
        // Not in the tables: kept (Fisher is not common enough to override Fischer).
        assert_eq!(s.usual_surname("Fischer"), None);
        assert_eq!(s.usual_surname("Park"), None);
        assert_eq!(s.usual_first_name("Bobbi"), None);
        // Spelled by ear ("Parrke" is listed nowhere, sounds like Parke), then its common homophone.
        assert_eq!(s.usual_surname("Parrke").as_deref(), Some("Park"));
        assert_eq!(s.homophone_sizes(), (1, 1));
        // Without the name lists the tables still apply to what was heard.
        let t = NameSpellings::new("", "").with_homophones("PARKE\tPARK\n", "");
        assert_eq!(t.usual_surname("parke").as_deref(), Some("Park"));
        assert_eq!(t.usual_surname("Natharajan"), None);
    }

    #[test]
    fn the_closest_of_several_alike_wins_and_a_tie_changes_nothing() {
        // "Gomhez" sounds like Gomes and Gomez (z and s fold alike) and is closest to Gomez.
        let s = lists();
        assert_eq!(s.usual_surname("Gomhez").as_deref(), Some("Gomez"));
        // "Smyithe" is one letter from both listed spellings.
        let s = NameSpellings::new("SMYTHE\nSMITHE\n", "");
        assert_eq!(s.usual_surname("Smyithe"), None);
        assert_eq!(s.sizes(), (2, 0));
    }
}
