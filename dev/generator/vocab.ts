/**
 * Word lists for made-up names. Nothing here comes from the real sample; a few entries carry
 * non-ASCII letters, slashes and quotes on purpose, because the real data has them and they
 * exercise the escaping on both sides.
 */

const words = (s: string): readonly string[] => s.split(' ');
const phrases = (s: string): readonly string[] => s.split('|');

export const ADJECTIVES = words(
  'Amber Silent Electric Golden Broken Hollow Velvet Midnight Crimson Paper Neon Quiet Wild ' +
    'Frozen Burning Distant Gentle Restless Lonely Bright Silver Secret Falling Rising Lost ' +
    'Sweet Bitter Heavy Little Endless Northern Southern Faded Hidden Savage Tender Cosmic ' +
    'Rusty Sleepy Lucky Empty Purple Wooden Glass Iron Stolen Open Dusty Blue Scarlet Última ' +
    'Fröhlich Señorita Déjà Crème Naïve Très Zoë Über Mañana',
);

export const NOUNS = words(
  'Harbor River Engine Garden Highway Mirror Thunder Window Ocean Fire Shadow Canyon Radio ' +
    'Heart Island Letter Summer Winter Station Lantern Signal Horizon Avenue Kingdom Machine ' +
    'Meadow Orchard Parade Rocket Satellite Storm Tide Valley Wolf Dream Feather Candle Compass ' +
    'Diamond Echo Forest Ghost Lullaby Mountain Notebook Planet Railroad Sparrow Tiger Weather ' +
    'Corazón Café Façade Señal Canción Straße Fiancée Noël Jalapeño Smörgåsbord',
);

export const VERBS = words(
  'Dancing Waiting Running Calling Holding Chasing Burning Falling Breaking Driving Singing ' +
    'Dreaming Walking Flying Fading Shining Hiding Drifting Turning Crying',
);

export const PREPOSITIONS = words('In On Under Over Through Beyond Across Without Into Near');

export const MIXES = phrases(
  'Radio Edit|Live|Acoustic|Remastered|Album Version|Demo|Extended Mix|Remix|Instrumental|Mono',
);

export const FEMALE_NAMES = words(
  'Ava Mia Chloe Lily Zoe Nora Ella Ruby Iris Hazel Alice Clara Maya Leah Stella Vera Josie ' +
    'Greta Naomi Piper Renée Inés Björg Amélie',
);

export const MALE_NAMES = words(
  'Liam Noah Owen Ezra Felix Hugo Jasper Leo Milo Oscar Silas Theo Arlo Caleb Dean Emmett ' +
    'Finn Gus Ivan Jonah José Søren André Rafaël',
);

export const LAST_NAMES = words(
  'Abbott Barlow Carver Dalton Ellison Fletcher Garrison Holloway Ingram Jennings Keller ' +
    'Lambert Mercer Norwood Osborne Prescott Quinlan Radford Sutton Thorne Underwood Vance ' +
    "Whitaker Yardley O'Connell Núñez Müller Østergaard Brontë Peña",
);

/** Metro-area strings shaped like the census names the real log uses. */
export const METROS = [
  'Springfield-Branson, MO',
  'Riverton-Lakeside-Eastport, WA',
  'Harbor City-Newfield, CA',
  'Cedar Falls-Westbrook, IA',
  'Millbrook-Oakdale-Fairview, TX',
  'Stonebridge, CO',
  'Bayview-Port Allen, FL',
  'Greenville-Ashford-Carlow, NC-SC',
  'Maple Grove-Elk River, MN',
  'Pine Bluff-Redwood, AR',
  'Northgate-Silver Lake, OH',
  'Clearwater Heights, AZ',
  'Union City-Marlow-Kent, NJ-NY-PA',
  'Fort Ridley-Holt, KS',
  'Lakewood-Brighton, MI',
  'San Lucas-Mesa Verde, NM',
  'Eastport-Wells, ME',
  'Rockford-Belmont-Avon, IL-IN-WI',
  'Chatham-Glen Ellis, GA',
  'Portsmouth-Dover, NH',
];

/** Places for artists' rows in song files (free text there, often blank). */
export const PLACES = phrases(
  'Portland, OR|Austin, TX|Glasgow, Scotland|Montréal, Québec|São Paulo, Brazil|' +
    'Berlin, Germany|Reykjavík, Iceland|Nashville, TN.|California - SF|Kingston, Jamaica|' +
    'Lagos, Nigeria|New York, NY|Manchester, England|Melbourne, Australia|Osaka, Japan|' +
    'Bogotá, Colombia|Detroit, MI|Dublin, Ireland|Seattle, WA|Toronto, Ontario, Canada',
);

/**
 * User agents as eventsim stores them: wrapped in literal double quotes, which is why the
 * log shows "\"Mozilla\/5.0 ...\"".
 */
export const USER_AGENTS = [
  '"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/38.0.2125.104 Safari/537.36"',
  '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/37.0.2062.124 Safari/537.36"',
  '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10) AppleWebKit/600.1.25 (KHTML, like Gecko) Version/8.0 Safari/600.1.25"',
  '"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:32.0) Gecko/20100101 Firefox/32.0"',
  '"Mozilla/5.0 (Windows NT 6.3; WOW64; rv:33.0) Gecko/20100101 Firefox/33.0"',
  '"Mozilla/5.0 (iPhone; CPU iPhone OS 8_1 like Mac OS X) AppleWebKit/600.1.4 (KHTML, like Gecko) Version/8.0 Mobile/12B411 Safari/600.1.4"',
  '"Mozilla/5.0 (iPad; CPU OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 (KHTML, like Gecko) Version/7.0 Mobile/11D257 Safari/9537.53"',
  '"Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; WOW64; Trident/6.0)"',
  '"Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko"',
  '"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/38.0.2125.111 Safari/537.36"',
];
