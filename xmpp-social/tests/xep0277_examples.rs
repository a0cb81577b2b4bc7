//! Round-trip tests on every example of XEP-0277 (Microblogging over XMPP, 0.6.5) and XEP-0472
//! (Pubsub Social Feed) that carries an Atom `<entry/>`, on a Libervia-style entry, and on malformed
//! or hostile input.
//!
//! The examples are copied verbatim from the XEP sources (their CDATA sections), so this test does
//! not depend on the spec files being around.

use chrono::{DateTime, FixedOffset};
use jid::Jid;
use minidom::Element;
use xmpp_social::microblog::{
    item_id_from_atom_id, Entry, ItemRef, NodeRef, Text, COMMENTS_NODE_PREFIX, MAX_LIST_LEN,
    MAX_TEXT_BYTES, NS_ATOM, NS_MICROBLOG,
};
use xmpp_social::ParseError;

/// XEP-0277, example "Publishing a post".
const XEP0277_PUBLISH: &str = r#"<iq from='romeo@montague.lit/pda'
    id='pub1'
    to='romeo@montague.lit'
    type='set'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:microblog:0'>
      <item id='1cb57d9c-1c46-11dd-838c-001143d5d5db'>
        <entry xmlns='http://www.w3.org/2005/Atom'>
          <title type='text'>hanging out at the Caf&#233; Napolitano</title>
          <id>tag:montague.lit,2008-05-08:posts-1cb57d9c-1c46-11dd-838c-001143d5d5db</id>
          <published>2008-05-08T18:30:02Z</published>
          <updated>2008-05-08T18:30:02Z</updated>
        </entry>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// XEP-0277, example "Publishing a post with rich content".
const XEP0277_RICH: &str = r#"<iq from='romeo@montague.lit/pda'
    id='pub1'
    to='romeo@montague.lit'
    type='set'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:microblog:0'>
      <item id='1cb57d9c-1c46-11dd-838c-001143d5d5db'>
        <entry xmlns='http://www.w3.org/2005/Atom'>
          <title type='xhtml'>
            <div xmlns="http://www.w3.org/1999/xhtml">
              <p>hanging out at the <strong>Caf&#233; Napolitano</strong></p>
            </div>
          </title>
          <id>tag:montague.lit,2008-05-08:posts-1cb57d9c-1c46-11dd-838c-001143d5d5db</id>
          <published>2008-05-08T18:30:02Z</published>
          <updated>2008-05-08T18:30:02Z</updated>
          <generator uri='https://capu.chat' version='42'>CapuChat</generator>
        </entry>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// XEP-0277, example "Receiving a post".
const XEP0277_RECEIVE: &str = r#"<message from='romeo@montague.lit'
         to='juliet@capulet.lit'
         type='headline'>
  <body>hanging out at the Caf&#233; Napolitano</body>
  <event xmlns='http://jabber.org/protocol/pubsub#event'>
    <items node='urn:xmpp:microblog:0'>
      <item id='1cb57d9c-1c46-11dd-838c-001143d5d5db' publisher='romeo@montague.lit'>
        <entry xmlns='http://www.w3.org/2005/Atom'>
          <title type='text'>hanging out at the Caf&#233; Napolitano</title>
          <link rel='alternate'
                type='text/html'
                href='http://montague.lit/romeo/posts/1cb57d9c-1c46-11dd-838c-001143d5d5db'/>
          <link rel='alternate'
                href='xmpp:romeo@montague.lit?;node=urn%3Axmpp%3Amicroblog%3A0;item=1cb57d9c-1c46-11dd-838c-001143d5d5db'/>
          <id>tag:montague.lit,2008-05-08:posts-1cb57d9c-1c46-11dd-838c-001143d5d5db</id>
          <published>2008-05-08T18:30:02Z</published>
          <updated>2008-05-08T18:30:02Z</updated>
          <generator uri='https://capu.chat' version='42'>CapuChat</generator>
        </entry>
      </item>
    </items>
  </event>
</message>"#;

/// XEP-0277, example "Publishing a reply".
const XEP0277_REPLY: &str = r#"<iq from='benvolio@montague.lit/mobile'
    id='uv2x37s5'
    to='benvolio@montague.lit'
    type='set'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:microblog:0'>
      <item id='c4145006-1c53-11dd-b2d5-000bcd82471e'>
        <entry xmlns='http://www.w3.org/2005/Atom'
               xmlns:thr='http://purl.org/syndication/thread/1.0'>
          <author>
            <name>Benvolio Montague</name>
            <uri>xmpp:romeo@montague.lit</uri>
          </author>
          <title type='text'>@romeo cappuccino this late in the day?</title>
          <link rel='alternate'
                type='text/html'
                href='http://montague.lit/benvolio/posts/c4145006-1c53-11dd-b2d5-000bcd82471e'/>
          <link rel='alternate'
                href='xmpp:benvolio@montague.lit?;
                      node=urn%3Axmpp%3Amicroblog%3A0;
                      item=c4145006-1c53-11dd-b2d5-000bcd82471e'/>
          <id>tag:montague.lit,2008-05-08:posts-c4145006-1c53-11dd-b2d5-000bcd82471e</id>
          <published>2008-05-08T18:31:21Z</published>
          <updated>2008-05-08T18:31:21Z</updated>
          <thr:in-reply-to
               ref='tag:montague.lit,2008-05-08:posts-1cb57d9c-1c46-11dd-838c-001143d5d5db'
               type='application/xhtml+xml'
               href='http://montague.lit/romeo/posts/1cb57d9c-1c46-11dd-838c-001143d5d5db'/>
          <thr:in-reply-to
               ref='tag:montague.lit,2008-05-08:posts-1cb57d9c-1c46-11dd-838c-001143d5d5db'
               href='xmpp:romeo@montague.lit?;node=urn%3Axmpp%3Amicroblog%3A0;item=1cb57d9c-1c46-11dd-838c-001143d5d5db'/>
        </entry>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// XEP-0277, example "Repeating a Post".
const XEP0277_REPEAT: &str = r#"<iq from='benvolio@montague.lit/mobile'
    id='pub2'
    to='benvolio@montague.lit'
    type='set'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:microblog:0'>
      <item id='1re57d3c-1q46-11dd-748r-024943d2d5rt'>
        <entry xmlns='http://www.w3.org/2005/Atom'>
          <author>
            <name>Romeo Montague</name>
            <uri>xmpp:romeo@montague.lit</uri>
          </author>
          <title type='text'>hanging out at the Caf&#233; Napolitano</title>
          <link rel='alternate'
                type='text/html'
                href='http://montague.lit/benvolio/posts/1re57d3c-1q46-11dd-748r-024943d2d5rt'/>
          <link rel='alternate'
                href='xmpp:benvolio@montague.lit?;node=urn%3Axmpp%3Amicroblog%3A0;item=1re57d3c-1q46-11dd-748r-024943d2d5rt'/>
          <link rel='via'
                href='xmpp:romeo@montague.lit?;node=urn%3Axmpp%3Amicroblog%3A0;item=1cb57d9c-1c46-11dd-838c-001143d5d5db'
                ref='tag:montague.lit,2008-05-08:posts-1cb57d9c-1c46-11dd-838c-001143d5d5db'/>
          <id>tag:montague.lit,2008-05-08:posts-1re57d3c-1q46-11dd-748r-024943d2d5rt</id>
          <published>2008-05-08T18:30:02Z</published>
          <updated>2008-05-08T18:32:02Z</updated>
        </entry>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// XEP-0277, example "Specify post's categories".
const XEP0277_CATEGORIES: &str = r#"<entry xmlns='http://www.w3.org/2005/Atom'>
  ...
  <category term='humour'/>
  <category term='xmpp'/>
  ...
</entry>"#;

/// XEP-0277, example "Adding a comments link to a Post".
const XEP0277_COMMENTS_LINK: &str = r#"<iq from='romeo@montague.lit/pda'
    id='pub4'
    to='romeo@montague.lit'
    type='set'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:microblog:0'>
      <item id='2ze57d9c-1c46-21df-830c-002143d3d2qgf'>
        <entry xmlns='http://www.w3.org/2005/Atom'>
          <title type='text'>hanging out at the Caf&#233; Napolitano</title>
          <link rel='replies'
                title='comments'
                href='xmpp:pubsub.montague.lit?;node=urn%3Axmpp%3Amicroblog%3A0%3Acomments%2Fdd88c9bc58886fce0049ed050df0c5f2'/>
          <id>tag:montague.lit,2008-05-08:posts-2ze57d9c-1c46-21df-830c-002143d3d2qgf</id>
          <published>2008-05-08T18:38:02Z</published>
          <updated>2008-05-08T18:38:02Z</updated>
        </entry>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// XEP-0277, example "Adding a comment to a comments node".
const XEP0277_COMMENT: &str = r#"<iq from='juliet@capulet.lit/pc'
    id='comment1'
    to='pubsub.capulet.lit'
    type='set'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:microblog:0:comments/dd88c9bc58886fce0049ed050df0c5f2'>
      <item id='b2106a80de39ef5ec6b8f7b69cb610c2'>
        <entry xmlns='http://www.w3.org/2005/Atom'>
          <author>
            <name>Juliet Capulet</name>
            <uri>xmpp:juliet@capulet.lit</uri>
          </author>
          <title type='text'>She is so pretty!</title>
          <published>2008-05-08T18:39:02Z</published>
        </entry>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// XEP-0277, example "Publishing microblog metadata".
const XEP0277_FEED_METADATA: &str = r#"<iq from='romeo@montague.lit/pc'
    id='pub8'
    to='romeo@montague.lit'
    type='set'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:microblog:0'>
      <item id='0'>
        <feed xmlns='http://www.w3.org/2005/Atom'>
          <title>Romeo&apos;s Microblog</title>
          <id>tag:montague.lit,2008:home</id>
          <updated>2008-05-08T18:30:02Z</updated>
          <author>
            <name>Romeo Montague</name>
            <uri>xmpp:romeo@montague.lit</uri>
          </author>
        </feed>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// XEP-0277, example "Publishing comments node metadata".
const XEP0277_COMMENTS_FEED_METADATA: &str = r#"<iq from='romeo@montague.lit/pc'
    id='pub8'
    to='pubsub.montague.lit'
    type='set'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:microblog:0'>
      <item id='0'>
        <feed xmlns='http://www.w3.org/2005/Atom'>
          <title>Comments to a post</title>
          <id>tag:pubsub.montague.lit,2008:comments-2ze57d9c-1c46-21df-830c-002143d3d2qgf</id>
          <updated>2008-05-08T18:30:02Z</updated>
          <link rel='start'
                href='xmpp:romeo@montague.lit?;node=urn%3Axmpp%3Amicroblog%3A0;item=1cb57d9c-1c46-11dd-838c-001143d5d5db'
                ref='tag:montague.lit,2008-05-08:posts-1cb57d9c-1c46-11dd-838c-001143d5d5db'/>
        </feed>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// XEP-0277, example "Geotagging a Post".
const XEP0277_GEOTAG: &str = r#"<iq from='romeo@montague.lit/mobile'
    id='pub7'
    to='romeo@montague.lit'
    type='set'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:microblog:0'>
      <item id='1zr23z8a-3g12-34fh-750b-120867gjc1sqh'>
        <entry xmlns='http://www.w3.org/2005/Atom'>
          <author>
            <name>Romeo Montague</name>
            <uri>xmpp:romeo@montague.lit</uri>
          </author>
          <title type='text'>Is lost in the forest. Need help!</title>
          <link rel='replies'
                title='comments'
                href='xmpp:pubsub.montague.lit?;node=urn%3Axmpp%3Amicroblog%3A0%3Acomments%2F36ec6dfe61e52b1e2cdb248823520233'/>
          <id>tag:montague.lit,2008-05-08:posts-1zr23z8a-3g12-34fh-750b-120867gjc1sqh</id>
          <published>2008-05-08T18:43:01Z</published>
          <updated>2008-05-08T18:43:01Z</updated>
          <geoloc xmlns="http://jabber.org/protocol/geoloc">
            <lat>48.171761</lat>
            <lon>-3.3667986</lon>
            <country>France</country>
            <countrycode>FR</countrycode>
            <region>Brittany</region>
          </geoloc>
        </entry>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// XEP-0472, example "Publishing a post".
const XEP0472_PUBLISH: &str = r#"<iq from='romeo@montague.lit/pda'
    id='pub1'
    to='new.montague.lit'
    type='set'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='montague-family'>
      <item id='1cb57d9c-1c46-11dd-838c-001143d5d5db'>
        <entry xmlns='http://www.w3.org/2005/Atom'>
          <title type='text'>hanging out at the Caf&amp;#233; Napolitano</title>
          <id>tag:montague.lit,2008-05-08:posts-1cb57d9c-1c46-11dd-838c-001143d5d5db</id>
          <published>2008-05-08T18:30:02Z</published>
          <updated>2008-05-08T18:30:02Z</updated>
        </entry>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// XEP-0472, example "Publishing a post with rich content".
const XEP0472_RICH: &str = r#"<iq from='romeo@montague.lit/pda'
    id='pub2'
    to='news.montague.lit'
    type='set'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='montague-family'>
      <item id='1cb57d9c-1c46-11dd-838c-001143d5d5db'>
        <entry xmlns='http://www.w3.org/2005/Atom'>
          <title type='xhtml'>
            <div xmlns="http://www.w3.org/1999/xhtml">
              <p>hanging out at the <strong>Caf&amp;#233; Napolitano</strong></p>
            </div>
          </title>
          <id>tag:montague.lit,2008-05-08:posts-1cb57d9c-1c46-11dd-838c-001143d5d5db</id>
          <published>2008-05-08T18:30:02Z</published>
          <updated>2008-05-08T18:30:02Z</updated>
          <generator uri='https://capu.chat' version='42'>CapuChat</generator>
        </entry>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// XEP-0472, example "Receiving a post".
const XEP0472_RECEIVE: &str = r#"<message from='news.montague.lit'
         to='juliet@capulet.lit'
         type='headline'>
  <body>hanging out at the Caf&amp;#233; Napolitano</body>
  <event xmlns='http://jabber.org/protocol/pubsub#event'>
    <items node='montague-family'>
      <item id='1cb57d9c-1c46-11dd-838c-001143d5d5db' publisher='romeo@montague.lit'>
        <entry xmlns='http://www.w3.org/2005/Atom'>
          <title type='text'>hanging out at the Caf&amp;#233; Napolitano</title>
          <link rel='alternate'
                type='text/html'
                href='http://montague.lit/romeo/posts/1cb57d9c-1c46-11dd-838c-001143d5d5db'/>
          <link rel='alternate'
                href='xmpp:news.montague.lit?;node=montague-family;item=1cb57d9c-1c46-11dd-838c-001143d5d5db'/>
          <id>tag:montague.lit,2008-05-08:posts-1cb57d9c-1c46-11dd-838c-001143d5d5db</id>
          <published>2008-05-08T18:30:02Z</published>
          <updated>2008-05-08T18:30:02Z</updated>
          <generator uri='https://capu.chat' version='42'>CapuChat</generator>
        </entry>
      </item>
    </items>
  </event>
</message>"#;

/// XEP-0472, example "Publishing a reply".
const XEP0472_REPLY: &str = r#"<iq from='benvolio@montague.lit/mobile'
    id='uv2x37s5'
    to='news.montague.lit'
    type='set'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='montague-family'>
      <item id='c4145006-1c53-11dd-b2d5-000bcd82471e'>
        <entry xmlns='http://www.w3.org/2005/Atom'
               xmlns:thr='http://purl.org/syndication/thread/1.0'>
          <author>
            <name>Benvolio Montague</name>
            <uri>xmpp:romeo@montague.lit</uri>
          </author>
          <title type='text'>@romeo cappuccino this late in the day?</title>
          <link rel='alternate'
                type='text/html'
                href='http://montague.lit/benvolio/posts/c4145006-1c53-11dd-b2d5-000bcd82471e'/>
          <link rel='alternate'
                href='xmpp:news.montague.lit?;
                      node=montague-family;
                      item=c4145006-1c53-11dd-b2d5-000bcd82471e'/>
          <id>tag:montague.lit,2008-05-08:posts-c4145006-1c53-11dd-b2d5-000bcd82471e</id>
          <published>2008-05-08T18:31:21Z</published>
          <updated>2008-05-08T18:31:21Z</updated>
          <thr:in-reply-to
               ref='tag:montague.lit,2008-05-08:posts-1cb57d9c-1c46-11dd-838c-001143d5d5db'
               type='application/xhtml+xml'
               href='http://montague.lit/romeo/posts/1cb57d9c-1c46-11dd-838c-001143d5d5db'/>
          <thr:in-reply-to
               ref='tag:montague.lit,2008-05-08:posts-1cb57d9c-1c46-11dd-838c-001143d5d5db'
               href='xmpp:news.montague.lit?;node=montague-family;item=1cb57d9c-1c46-11dd-838c-001143d5d5db'/>
        </entry>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// XEP-0472, example "Repeating a Post".
const XEP0472_REPEAT: &str = r#"<iq from='benvolio@montague.lit/mobile'
    id='pub2'
    to='news.montague.lit'
    type='set'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='montague-family'>
      <item id='1re57d3c-1q46-11dd-748r-024943d2d5rt'>
        <entry xmlns='http://www.w3.org/2005/Atom'>
          <author>
            <name>Romeo Montague</name>
            <uri>xmpp:romeo@montague.lit</uri>
          </author>
          <title type='text'>hanging out at the Caf&amp;#233; Napolitano</title>
          <link rel='alternate'
                type='text/html'
                href='http://montague.lit/benvolio/posts/1re57d3c-1q46-11dd-748r-024943d2d5rt'/>
          <link rel='alternate'
                href='xmpp:news.montague.lit?;node=montague-family;item=1re57d3c-1q46-11dd-748r-024943d2d5rt'/>
          <link rel='via'
                href='xmpp:rnews.montague.lit?;node=montague-family;item=1cb57d9c-1c46-11dd-838c-001143d5d5db'
                ref='tag:montague.lit,2008-05-08:posts-1cb57d9c-1c46-11dd-838c-001143d5d5db'/>
          <id>tag:montague.lit,2008-05-08:posts-1re57d3c-1q46-11dd-748r-024943d2d5rt</id>
          <published>2008-05-08T18:30:02Z</published>
          <updated>2008-05-08T18:32:02Z</updated>
        </entry>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// XEP-0472, example "Geotagging a Post".
const XEP0472_GEOTAG: &str = r#"<iq from='romeo@montague.lit/mobile'
    id='pub7'
    to='romeo@montague.lit'
    type='set'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:microblog:0'>
      <item id='1zr23z8a-3g12-34fh-750b-120867gjc1sqh'>
        <entry xmlns='http://www.w3.org/2005/Atom'>
          <author>
            <name>Romeo Montague</name>
            <uri>xmpp:romeo@montague.lit</uri>
          </author>
          <title type='text'>Is lost in the forest. Need help!</title>
          <id>tag:montague.lit,2008-05-08:posts-1zr23z8a-3g12-34fh-750b-120867gjc1sqh</id>
          <published>2008-05-08T18:43:01Z</published>
          <updated>2008-05-08T18:43:01Z</updated>
          <geoloc xmlns="http://jabber.org/protocol/geoloc">
            <lat>48.171761</lat>
            <lon>-3.3667986</lon>
            <country>France</country>
            <countrycode>FR</countrycode>
            <region>Brittany</region>
          </geoloc>
        </entry>
      </item>
    </publish>
  </pubsub>
</iq>"#;

/// XEP-0472, example "An Atom attached picture".
const XEP0472_GALLERY_LINK: &str = r#"<link rel='enclosure' href='https://capulet.lit/upload/romeo.jpg' type='image/jpeg' title='Romeo Portrait'/>"#;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn jid(s: &str) -> Jid {
    Jid::new(s).expect("valid test JID")
}

fn date(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).expect("valid test date")
}

/// The `<entry>...</entry>` text of an example stanza.
fn entry_text(stanza: &str) -> &str {
    let start = stanza.find("<entry").expect("the example has an entry");
    match stanza.rfind("</entry>") {
        Some(end) => &stanza[start..end + "</entry>".len()],
        // A self-closing entry.
        None => &stanza[start..],
    }
}

/// The pubsub item id of an example stanza, if any.
fn pubsub_item_id(stanza: &str) -> Option<&str> {
    let start = stanza.find("<item id='")? + "<item id='".len();
    let len = stanza[start..].find('\'')?;
    Some(&stanza[start..start + len])
}

/// Finds the first `{Atom}entry` in a tree (iteratively).
fn find_entry(root: &Element) -> Option<&Element> {
    let mut stack = vec![root];
    while let Some(el) = stack.pop() {
        if el.is("entry", NS_ATOM) {
            return Some(el);
        }
        stack.extend(el.children());
    }
    None
}

/// Parses an example, checks every round trip, and returns the entry for field checks:
/// - text -> Entry -> text -> Entry gives the same entry, and serialising is then a fixed point;
/// - Entry -> Element -> Entry gives the same entry;
/// - the entry read in place inside its stanza (inherited namespaces) is the same entry.
fn round_trip(stanza: &str) -> Entry {
    let entry = Entry::from_xml_str(entry_text(stanza)).expect("the example parses");

    let xml = entry.to_xml_string().expect("serialises");
    let again = Entry::from_xml_str(&xml).expect("the serialisation parses");
    assert_eq!(again, entry, "text round trip of:\n{xml}");
    assert_eq!(again.to_xml_string().expect("serialises"), xml);

    let el = Element::from(&entry);
    assert_eq!(Entry::try_from(&el).expect("element parses"), entry);
    assert_eq!(Entry::try_from(el).expect("element parses"), entry);

    if stanza.starts_with("<iq") || stanza.starts_with("<message") {
        let root_end = stanza.find(|c: char| c.is_whitespace()).expect("root tag");
        let with_ns = format!(
            "{} xmlns='jabber:client'{}",
            &stanza[..root_end],
            &stanza[root_end..]
        );
        let stanza_el: Element = with_ns.parse().expect("the example stanza parses");
        let in_place = find_entry(&stanza_el).expect("entry in stanza");
        assert_eq!(Entry::try_from(in_place).expect("in place"), entry);
    }

    // The atom:id designates the pubsub item (XEP-0277 examples use tag: URIs ending in posts-<id>).
    if let (Some(item), Some(_)) = (pubsub_item_id(stanza), &entry.id) {
        assert_eq!(entry.item_id().as_deref(), Some(item));
    }
    entry
}

fn plain(s: &str) -> Option<Text> {
    Some(Text::Plain(s.to_owned()))
}

const CAFE: &str = "hanging out at the Caf\u{e9} Napolitano";
/// XEP-0472 escapes its examples twice: the entity is literal text there.
const CAFE_0472: &str = "hanging out at the Caf&#233; Napolitano";
const POST_1: &str = "1cb57d9c-1c46-11dd-838c-001143d5d5db";
const TAG_1: &str = "tag:montague.lit,2008-05-08:posts-1cb57d9c-1c46-11dd-838c-001143d5d5db";

// ---------------------------------------------------------------------------------------------
// XEP-0277 examples
// ---------------------------------------------------------------------------------------------

#[test]
fn xep0277_publishing_a_post() {
    let e = round_trip(XEP0277_PUBLISH);
    assert_eq!(e.title, plain(CAFE));
    assert_eq!(e.id.as_deref(), Some(TAG_1));
    assert_eq!(e.item_id().as_deref(), Some(POST_1));
    assert_eq!(e.published, Some(date("2008-05-08T18:30:02Z")));
    assert_eq!(e.updated, Some(date("2008-05-08T18:30:02Z")));
    assert!(e.content.is_empty() && e.authors.is_empty() && e.links.is_empty());
    assert!(e.extra.is_empty());
    e.validate_for_publish().expect("a complete post");
}

#[test]
fn xep0277_publishing_rich_content() {
    let e = round_trip(XEP0277_RICH);
    let Some(Text::Xhtml(title)) = &e.title else {
        panic!("xhtml title expected: {:?}", e.title);
    };
    assert!(title.element().is("div", "http://www.w3.org/1999/xhtml"));
    assert_eq!(title.plain_text(), CAFE);
    assert_eq!(e.title_text().as_deref(), Some(CAFE));
    let generator = e.generator.as_ref().expect("generator");
    assert_eq!(generator.name, "CapuChat");
    assert_eq!(generator.uri.as_deref(), Some("https://capu.chat"));
    assert_eq!(generator.version.as_deref(), Some("42"));
    assert_eq!(e.item_id().as_deref(), Some(POST_1));
}

#[test]
fn xep0277_receiving_a_post() {
    let e = round_trip(XEP0277_RECEIVE);
    assert_eq!(e.title, plain(CAFE));
    assert_eq!(e.links.len(), 2);
    assert_eq!(e.links[0].rel.as_deref(), Some("alternate"));
    assert_eq!(e.links[0].media_type.as_deref(), Some("text/html"));
    assert_eq!(
        e.links[0].href,
        "http://montague.lit/romeo/posts/1cb57d9c-1c46-11dd-838c-001143d5d5db"
    );
    assert_eq!(e.links[0].xmpp_uri(), None);
    let uri = e.links[1].xmpp_uri().expect("xmpp alternate link");
    assert_eq!(
        uri.item_ref(),
        Some(ItemRef::new(
            jid("romeo@montague.lit"),
            NS_MICROBLOG,
            POST_1
        ))
    );
    assert_eq!(
        e.generator.as_ref().map(|g| g.name.as_str()),
        Some("CapuChat")
    );
    assert!(e.comments().is_empty() && e.repeated_item().is_none());
}

#[test]
fn xep0277_publishing_a_reply() {
    let e = round_trip(XEP0277_REPLY);
    assert_eq!(e.title, plain("@romeo cappuccino this late in the day?"));
    assert_eq!(e.authors.len(), 1);
    assert_eq!(e.authors[0].name.as_deref(), Some("Benvolio Montague"));
    assert_eq!(e.authors[0].uri.as_deref(), Some("xmpp:romeo@montague.lit"));
    assert_eq!(e.authors[0].jid(), Some(jid("romeo@montague.lit")));
    // The XMPP alternate link is wrapped over three lines in the XEP.
    assert_eq!(
        e.links[1].xmpp_uri().and_then(|u| u.item_ref()),
        Some(ItemRef::new(
            jid("benvolio@montague.lit"),
            NS_MICROBLOG,
            "c4145006-1c53-11dd-b2d5-000bcd82471e"
        ))
    );
    assert_eq!(e.published, Some(date("2008-05-08T18:31:21Z")));
    assert_eq!(e.in_reply_to.len(), 2);
    let http = &e.in_reply_to[0];
    assert_eq!(http.reference, TAG_1);
    assert_eq!(http.media_type.as_deref(), Some("application/xhtml+xml"));
    assert_eq!(
        http.href.as_deref(),
        Some("http://montague.lit/romeo/posts/1cb57d9c-1c46-11dd-838c-001143d5d5db")
    );
    assert_eq!(http.item(), None);
    assert_eq!(e.in_reply_to[1].reference, TAG_1);
    assert_eq!(
        e.reply_targets(),
        [ItemRef::new(
            jid("romeo@montague.lit"),
            NS_MICROBLOG,
            POST_1
        )]
    );
    assert_eq!(
        e.item_id().as_deref(),
        Some("c4145006-1c53-11dd-b2d5-000bcd82471e")
    );
}

#[test]
fn xep0277_repeating_a_post() {
    let e = round_trip(XEP0277_REPEAT);
    // The author of a repeat is the original author.
    assert_eq!(e.authors[0].name.as_deref(), Some("Romeo Montague"));
    assert_eq!(e.authors[0].jid(), Some(jid("romeo@montague.lit")));
    let via = e.via_link().expect("via link");
    assert_eq!(via.reference.as_deref(), Some(TAG_1));
    assert_eq!(
        e.repeated_item(),
        Some(ItemRef::new(
            jid("romeo@montague.lit"),
            NS_MICROBLOG,
            POST_1
        ))
    );
    assert_eq!(e.published, Some(date("2008-05-08T18:30:02Z")));
    assert_eq!(e.updated, Some(date("2008-05-08T18:32:02Z")));
    assert_eq!(
        e.item_id().as_deref(),
        Some("1re57d3c-1q46-11dd-748r-024943d2d5rt")
    );
}

#[test]
fn xep0277_post_categories() {
    let e = round_trip(XEP0277_CATEGORIES);
    assert_eq!(e.tags().collect::<Vec<_>>(), ["humour", "xmpp"]);
    assert_eq!(e.categories[0].scheme, None);
    assert_eq!(e.title, None);
    assert!(e.extra.is_empty());
}

#[test]
fn xep0277_comments_link() {
    let e = round_trip(XEP0277_COMMENTS_LINK);
    let node = "urn:xmpp:microblog:0:comments/dd88c9bc58886fce0049ed050df0c5f2";
    assert_eq!(
        e.comments(),
        [NodeRef::new(jid("pubsub.montague.lit"), node)]
    );
    assert!(node.starts_with(COMMENTS_NODE_PREFIX));
    assert!(e.links[0].is_comments());
    assert_eq!(
        e.item_id().as_deref(),
        Some("2ze57d9c-1c46-21df-830c-002143d3d2qgf")
    );
    assert_eq!(e.published, Some(date("2008-05-08T18:38:02Z")));
}

#[test]
fn xep0277_adding_a_comment() {
    let e = round_trip(XEP0277_COMMENT);
    assert_eq!(e.title, plain("She is so pretty!"));
    assert_eq!(e.authors[0].name.as_deref(), Some("Juliet Capulet"));
    assert_eq!(e.authors[0].jid(), Some(jid("juliet@capulet.lit")));
    assert_eq!(e.published, Some(date("2008-05-08T18:39:02Z")));
    // Lenient: no id and no updated in this comment.
    assert_eq!(e.id, None);
    assert_eq!(e.updated, None);
    assert_eq!(e.item_id(), None);
    assert!(matches!(
        e.validate_for_publish(),
        Err(ParseError::MissingChild { child: "id", .. })
    ));
}

#[test]
fn xep0277_geotagging() {
    let e = round_trip(XEP0277_GEOTAG);
    assert_eq!(e.title, plain("Is lost in the forest. Need help!"));
    let geo = e.geoloc.as_ref().expect("geoloc");
    assert_eq!(geo.lat, Some(48.171761));
    assert_eq!(geo.lon, Some(-3.3667986));
    assert_eq!(geo.country.as_deref(), Some("France"));
    assert_eq!(geo.countrycode.as_deref(), Some("FR"));
    assert_eq!(geo.region.as_deref(), Some("Brittany"));
    assert!(geo.other.is_empty());
    assert_eq!(
        e.comments(),
        [NodeRef::new(
            jid("pubsub.montague.lit"),
            "urn:xmpp:microblog:0:comments/36ec6dfe61e52b1e2cdb248823520233"
        )]
    );
    assert_eq!(
        e.item_id().as_deref(),
        Some("1zr23z8a-3g12-34fh-750b-120867gjc1sqh")
    );
}

#[test]
fn xep0277_feed_metadata_is_not_an_entry() {
    for stanza in [XEP0277_FEED_METADATA, XEP0277_COMMENTS_FEED_METADATA] {
        let start = stanza.find("<feed").expect("feed");
        let end = stanza.find("</feed>").expect("feed end") + "</feed>".len();
        assert!(matches!(
            Entry::from_xml_str(&stanza[start..end]),
            Err(ParseError::WrongElement { .. })
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// XEP-0472 examples
// ---------------------------------------------------------------------------------------------

#[test]
fn xep0472_publishing_a_post() {
    let e = round_trip(XEP0472_PUBLISH);
    assert_eq!(e.title, plain(CAFE_0472));
    assert_eq!(e.item_id().as_deref(), Some(POST_1));
    assert_eq!(e.published, Some(date("2008-05-08T18:30:02Z")));
}

#[test]
fn xep0472_publishing_rich_content() {
    let e = round_trip(XEP0472_RICH);
    assert_eq!(e.title_text().as_deref(), Some(CAFE_0472));
    assert!(matches!(e.title, Some(Text::Xhtml(_))));
    assert_eq!(
        e.generator.as_ref().and_then(|g| g.version.as_deref()),
        Some("42")
    );
}

#[test]
fn xep0472_receiving_a_post() {
    let e = round_trip(XEP0472_RECEIVE);
    assert_eq!(
        e.links[1].xmpp_uri().and_then(|u| u.item_ref()),
        Some(ItemRef::new(
            jid("news.montague.lit"),
            "montague-family",
            POST_1
        ))
    );
}

#[test]
fn xep0472_publishing_a_reply() {
    let e = round_trip(XEP0472_REPLY);
    assert_eq!(
        e.reply_targets(),
        [ItemRef::new(
            jid("news.montague.lit"),
            "montague-family",
            POST_1
        )]
    );
    assert_eq!(
        e.links[1].xmpp_uri().and_then(|u| u.item_ref()),
        Some(ItemRef::new(
            jid("news.montague.lit"),
            "montague-family",
            "c4145006-1c53-11dd-b2d5-000bcd82471e"
        ))
    );
    assert_eq!(
        e.in_reply_to[0].media_type.as_deref(),
        Some("application/xhtml+xml")
    );
}

#[test]
fn xep0472_repeating_a_post() {
    let e = round_trip(XEP0472_REPEAT);
    assert_eq!(
        e.repeated_item(),
        Some(ItemRef::new(
            jid("rnews.montague.lit"),
            "montague-family",
            POST_1
        ))
    );
    assert_eq!(e.authors[0].jid(), Some(jid("romeo@montague.lit")));
}

#[test]
fn xep0472_geotagging() {
    let e = round_trip(XEP0472_GEOTAG);
    let geo = e.geoloc.as_ref().expect("geoloc");
    assert_eq!((geo.lat, geo.lon), (Some(48.171761), Some(-3.3667986)));
    assert!(e.comments().is_empty());
}

#[test]
fn xep0472_gallery_enclosure() {
    let xml = format!(
        "<entry xmlns='http://www.w3.org/2005/Atom'><title>Portrait</title>{XEP0472_GALLERY_LINK}</entry>"
    );
    let e = round_trip(&xml);
    let pictures: Vec<_> = e.enclosures().collect();
    assert_eq!(pictures.len(), 1);
    assert_eq!(pictures[0].href, "https://capulet.lit/upload/romeo.jpg");
    assert_eq!(pictures[0].media_type.as_deref(), Some("image/jpeg"));
    assert_eq!(pictures[0].title.as_deref(), Some("Romeo Portrait"));
}

#[test]
fn every_example_round_trips() {
    let all = [
        XEP0277_PUBLISH,
        XEP0277_RICH,
        XEP0277_RECEIVE,
        XEP0277_REPLY,
        XEP0277_REPEAT,
        XEP0277_CATEGORIES,
        XEP0277_COMMENTS_LINK,
        XEP0277_COMMENT,
        XEP0277_GEOTAG,
        XEP0472_PUBLISH,
        XEP0472_RICH,
        XEP0472_RECEIVE,
        XEP0472_REPLY,
        XEP0472_REPEAT,
        XEP0472_GEOTAG,
    ];
    for stanza in all {
        let e = round_trip(stanza);
        // Nothing in the examples falls outside the typed model.
        assert!(e.extra.is_empty(), "{:?}", e.extra);
        // The serde view serialises.
        serde_json::to_string(&e).expect("json");
    }
}

// ---------------------------------------------------------------------------------------------
// Libervia-style entries
// ---------------------------------------------------------------------------------------------

/// What Libervia 0.9 `blog set` writes: XHTML and text `<content/>`, author with `xmpp:` URI,
/// `updated` before `published`, tags, the bare item id as `<id/>`, a comments link.
const LIBERVIA_POST: &str = r#"<entry xmlns="http://www.w3.org/2005/Atom" xml:lang="en"><title type="text">Libervia progress note 2022-W45</title><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Hello, it's time for a long overdue <strong>progress note</strong>.</p><p>I'll talk here about the work made on the <a href="https://www.w3.org/TR/activitypub/">ActivityPub</a> gateway &amp; on end-to-end encryption.</p></div></content><content type="text">Hello, it's time for a long overdue progress note.

I'll talk here about the work made on the ActivityPub gateway &amp; on end-to-end encryption.</content><author><name>goffi</name><uri>xmpp:goffi@goffi.org</uri></author><updated>2022-11-08T09:30:12.123456Z</updated><published>2022-11-08T09:30:12Z</published><category term="libervia"/><category term="XMPP"/><category term="progress"/><id>libervia-progress-note-2022-w45-hR4t</id><link href="xmpp:pubsub.goffi.org?;node=urn%3Axmpp%3Amicroblog%3A0%3Acomments%2Flibervia-progress-note-2022-w45-hR4t" rel="replies" title="comments"/><link rel="enclosure" href="https://goffi.org/upload/gateway.png" type="image/png" length="48213"/></entry>"#;

#[test]
fn libervia_text_and_xhtml_content() {
    let e = round_trip(LIBERVIA_POST);
    assert_eq!(e.language.as_deref(), Some("en"));
    assert_eq!(e.title, plain("Libervia progress note 2022-W45"));
    assert_eq!(e.content.len(), 2);
    assert!(matches!(e.content[0], Text::Xhtml(_)));
    assert!(e.content[1].is_plain());
    let body = e.body_text().expect("text body");
    assert!(body.starts_with("Hello, it's time"));
    assert!(body.contains("gateway & on"));
    let xhtml = e.body_xhtml().expect("xhtml body");
    assert_eq!(
        xhtml.plain_text(),
        "Hello, it's time for a long overdue progress note.\nI'll talk here about the work made on the ActivityPub gateway & on end-to-end encryption."
    );
    assert_eq!(e.authors[0].jid(), Some(jid("goffi@goffi.org")));
    // Sub-second precision is kept.
    assert_eq!(e.updated, Some(date("2022-11-08T09:30:12.123456Z")));
    assert!(e.to_xml_string().expect("xml").contains("09:30:12.123456Z"));
    assert_eq!(
        e.tags().collect::<Vec<_>>(),
        ["libervia", "XMPP", "progress"]
    );
    assert_eq!(
        e.item_id().as_deref(),
        Some("libervia-progress-note-2022-w45-hR4t")
    );
    assert_eq!(
        e.comments(),
        [NodeRef::new(
            jid("pubsub.goffi.org"),
            "urn:xmpp:microblog:0:comments/libervia-progress-note-2022-w45-hR4t"
        )]
    );
    let enclosure = e.enclosures().next().expect("enclosure");
    assert_eq!(enclosure.length, Some(48213));
    assert_eq!(enclosure.media_type.as_deref(), Some("image/png"));
    e.validate_for_publish().expect("publishable");

    let json = serde_json::to_value(&e).expect("json");
    assert_eq!(json["content"][0]["type"], "xhtml");
    assert!(json["content"][0]["value"]
        .as_str()
        .expect("xhtml as text")
        .starts_with("<div xmlns"));
    assert_eq!(json["updated"], "2022-11-08T09:30:12.123456Z");
}

#[test]
fn libervia_default_atom_id_is_an_xmpp_uri() {
    // Without an explicit id, Libervia 0.9 builds the atom:id as a pubsub URI of the item.
    let xml = "<entry xmlns='http://www.w3.org/2005/Atom'><title type='text'>hi</title>\
        <id>xmpp:louise@example.org?pubsub;node=urn%3Axmpp%3Amicroblog%3A0;item=hi-3f9a</id>\
        <title type='xhtml'><div xmlns='http://www.w3.org/1999/xhtml'><p>hi</p></div></title></entry>";
    let e = round_trip(xml);
    assert_eq!(e.item_id().as_deref(), Some("hi-3f9a"));
    assert_eq!(
        item_id_from_atom_id(e.id.as_deref().expect("id")).as_deref(),
        Some("hi-3f9a")
    );
    // A second (rich) title is not lost.
    assert_eq!(e.extra.len(), 1);
    assert!(e.extra[0].is("title", NS_ATOM));
}

#[test]
fn unknown_children_survive_republishing() {
    let xml = r#"<entry xmlns='http://www.w3.org/2005/Atom' xmlns:x='urn:example:ext'>
        <title>t</title>
        <rights type='html'>&lt;b&gt;CC-BY&lt;/b&gt;</rights>
        <x:mood level='3'>happy<x:why>sun</x:why></x:mood>
        <content type='image/png' src='https://example.org/p.png'/>
        <link rel='broken'/>
        <category label='no term'/>
        <thr:total xmlns:thr='http://purl.org/syndication/thread/1.0'>4</thr:total>
        <id>first</id><id>second</id>
        <geoloc xmlns='http://jabber.org/protocol/geoloc'><lat>1.5</lat><speed>3</speed><lat>9</lat></geoloc>
    </entry>"#;
    let e = round_trip(xml);
    assert_eq!(e.id.as_deref(), Some("first"));
    let names: Vec<_> = e.extra.iter().map(|el| el.name().to_owned()).collect();
    assert_eq!(
        names,
        ["rights", "mood", "content", "link", "category", "total", "id"]
    );
    let mood = &e.extra[1];
    assert!(mood.is("mood", "urn:example:ext"));
    assert_eq!(mood.attr("level"), Some("3"));
    assert_eq!(
        mood.get_child("why", "urn:example:ext")
            .map(Element::text)
            .as_deref(),
        Some("sun")
    );
    let geo = e.geoloc.as_ref().expect("geoloc");
    assert_eq!(geo.lat, Some(1.5));
    assert_eq!(geo.other.len(), 2);
    // Republishing keeps them.
    let republished = Element::from(&e);
    assert!(republished.get_child("mood", "urn:example:ext").is_some());
    assert!(republished.get_child("rights", NS_ATOM).is_some());
}

#[test]
fn lenient_reading() {
    // No title, an xhtml title without its div, an unknown text type, an empty entry.
    let e = round_trip(
        "<entry xmlns='http://www.w3.org/2005/Atom'><content>just text</content></entry>",
    );
    assert_eq!(e.title, None);
    assert_eq!(e.body_text().as_deref(), Some("just text"));
    let e = round_trip(
        "<entry xmlns='http://www.w3.org/2005/Atom'><title type='xhtml'>no div</title></entry>",
    );
    assert_eq!(e.title, plain("no div"));
    let e = round_trip(
        "<entry xmlns='http://www.w3.org/2005/Atom'><title type='weird'>w</title></entry>",
    );
    assert_eq!(e.title, plain("w"));
    let e = round_trip("<entry xmlns='http://www.w3.org/2005/Atom'/>");
    assert_eq!(e, Entry::default());
    // Whitespace around dates, other offsets, lowercase separators.
    let e = round_trip(
        "<entry xmlns='http://www.w3.org/2005/Atom'><published>\n 2008-05-08T20:30:02.5+02:00 \n</published>\
         <updated>2008-05-08t18:30:02z</updated></entry>",
    );
    assert_eq!(e.published, Some(date("2008-05-08T18:30:02.5Z")));
    assert_eq!(
        e.published.map(|d| d.offset().local_minus_utc()),
        Some(7200)
    );
    assert_eq!(e.updated, Some(date("2008-05-08T18:30:02Z")));
    // HTML titles.
    let e = round_trip("<entry xmlns='http://www.w3.org/2005/Atom'><title type='html'>&lt;b&gt;bold&lt;/b&gt; &amp;amp;</title></entry>");
    assert_eq!(e.title, Some(Text::Html("<b>bold</b> &amp;".into())));
    assert_eq!(e.title_text().as_deref(), Some("bold &"));
}

// ---------------------------------------------------------------------------------------------
// Malformed and hostile input
// ---------------------------------------------------------------------------------------------

fn entry_with(inner: &str) -> String {
    format!("<entry xmlns='http://www.w3.org/2005/Atom'>{inner}</entry>")
}

#[test]
fn wrong_or_missing_namespace() {
    assert!(matches!(
        Entry::from_xml_str("<entry><title>x</title></entry>"),
        Err(ParseError::Xml(_))
    ));
    assert!(matches!(
        Entry::from_xml_str("<entry xmlns='urn:not:atom'><title>x</title></entry>"),
        Err(ParseError::WrongElement { .. })
    ));
    assert!(matches!(
        Entry::from_xml_str("<item xmlns='http://www.w3.org/2005/Atom'/>"),
        Err(ParseError::WrongElement { .. })
    ));
    // An Atom-looking entry in the wrong namespace inside a stanza is still refused.
    let el: Element = "<entry xmlns='http://jabber.org/protocol/pubsub'/>"
        .parse()
        .expect("xml");
    assert!(matches!(
        Entry::try_from(&el),
        Err(ParseError::WrongElement { .. })
    ));
}

#[test]
fn bad_dates_are_invalid_values() {
    for bad in [
        "2008-05-08",
        "yesterday",
        "2008-13-45T18:30:02Z",
        "2008-05-08T18:30:02",
        "2008-05-08T25:30:02Z",
        "",
        "2008-05-08T18:30:02Z trailing",
    ] {
        for name in ["published", "updated"] {
            let xml = entry_with(&format!("<{name}>{bad}</{name}>"));
            assert!(
                matches!(
                    Entry::from_xml_str(&xml),
                    Err(ParseError::InvalidValue { .. })
                ),
                "{xml}"
            );
        }
    }
}

#[test]
fn bad_xmpp_uris_are_invalid_values() {
    for bad in [
        "<author><uri>xmpp:@montague.lit</uri></author>",
        "<author><uri>xmpp:a@b@c</uri></author>",
        "<author><uri>xmpp:</uri></author>",
        "<link rel='replies' title='comments' href='xmpp:pubsub.montague.lit%ZZ?;node=x'/>",
        "<link rel='replies' title='comments' href='xmpp:romeo@?;node=x'/>",
        "<link rel='via' href='xmpp:%C3%28@montague.lit?;node=x;item=y'/>",
        "<thr:in-reply-to xmlns:thr='http://purl.org/syndication/thread/1.0' ref='x' href='xmpp:a@b@c?;node=n;item=i'/>",
    ] {
        let xml = entry_with(bad);
        assert!(
            matches!(Entry::from_xml_str(&xml), Err(ParseError::InvalidValue { .. })),
            "{xml}"
        );
    }
    // Non-xmpp URIs are not checked.
    round_trip(&entry_with(
        "<author><uri>https://montague.lit/~romeo</uri></author>",
    ));
}

#[test]
fn bad_numbers_are_invalid_values() {
    for bad in [
        "<link rel='enclosure' href='https://x/y' length='big'/>",
        "<link rel='enclosure' href='https://x/y' length='-1'/>",
        "<geoloc xmlns='http://jabber.org/protocol/geoloc'><lat>north</lat></geoloc>",
        "<geoloc xmlns='http://jabber.org/protocol/geoloc'><lon>NaN</lon></geoloc>",
        "<geoloc xmlns='http://jabber.org/protocol/geoloc'><alt>inf</alt></geoloc>",
    ] {
        assert!(
            matches!(
                Entry::from_xml_str(&entry_with(bad)),
                Err(ParseError::InvalidValue { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn huge_text_is_too_large() {
    let big = "a".repeat(MAX_TEXT_BYTES + 1);
    for xml in [
        entry_with(&format!("<title>{big}</title>")),
        entry_with(&format!("<content type='html'>{big}</content>")),
        entry_with(&format!("<x xmlns='urn:x'>{big}</x>")),
    ] {
        assert!(
            matches!(Entry::from_xml_str(&xml), Err(ParseError::TooLarge { .. })),
            "{}",
            &xml[..80]
        );
    }
    // The XML parser already refuses attribute values this long.
    let xml = entry_with(&format!("<link href='{big}'/>"));
    assert!(matches!(
        Entry::from_xml_str(&xml),
        Err(ParseError::TooLarge { .. } | ParseError::Xml(_))
    ));
    // Just under the limit is fine.
    let ok = "a".repeat(MAX_TEXT_BYTES);
    let e = round_trip(&entry_with(&format!("<title>{ok}</title>")));
    assert_eq!(e.title_text().map(|t| t.len()), Some(MAX_TEXT_BYTES));
    // Documents over the 1 MiB cap are refused before parsing.
    let doc = entry_with(&"<category term='x'/>".repeat(60_000));
    assert!(matches!(
        Entry::from_xml_str(&doc),
        Err(ParseError::TooLarge { .. })
    ));
    // An element built in memory (no text limit) is checked too.
    let el = Element::builder("entry", NS_ATOM)
        .append(Element::builder("title", NS_ATOM).append("b".repeat(2 * MAX_TEXT_BYTES)))
        .build();
    assert!(matches!(
        Entry::try_from(&el),
        Err(ParseError::TooLarge { .. })
    ));
    let el = Element::builder("entry", NS_ATOM)
        .append(
            Element::builder("link", NS_ATOM)
                .attr(minidom::rxml::xml_ncname!("href").into(), big.as_str()),
        )
        .build();
    assert!(matches!(
        Entry::try_from(&el),
        Err(ParseError::TooLarge { .. })
    ));
}

#[test]
fn too_many_children_is_too_large() {
    for one in [
        "<category term='t'/>",
        "<link href='https://x/'/>",
        "<author><name>n</name></author>",
        "<x xmlns='urn:x'/>",
    ] {
        let ok = entry_with(&one.repeat(MAX_LIST_LEN));
        Entry::from_xml_str(&ok).expect("at the limit");
        let xml = entry_with(&one.repeat(MAX_LIST_LEN + 1));
        assert!(
            matches!(Entry::from_xml_str(&xml), Err(ParseError::TooLarge { .. })),
            "{one}"
        );
    }
}

#[test]
fn deep_nesting_is_too_large() {
    // Refused by the text parser before a DOM exists.
    let depth = 200;
    let xml = entry_with(&format!(
        "{}{}",
        "<x xmlns='urn:x'>".repeat(depth),
        "</x>".repeat(depth)
    ));
    assert!(matches!(
        Entry::from_xml_str(&xml),
        Err(ParseError::TooLarge { .. })
    ));
    let xml = entry_with(&format!(
        "<content type='xhtml'><div xmlns='http://www.w3.org/1999/xhtml'>{}{}</div></content>",
        "<span>".repeat(depth),
        "</span>".repeat(depth)
    ));
    assert!(matches!(
        Entry::from_xml_str(&xml),
        Err(ParseError::TooLarge { .. })
    ));
    // And by the conversion for an element built some other way.
    let mut el = Element::bare("x", "urn:x");
    for _ in 0..depth {
        el = Element::builder("x", "urn:x").append(el).build();
    }
    let entry = Element::builder("entry", NS_ATOM).append(el).build();
    assert!(matches!(
        Entry::try_from(&entry),
        Err(ParseError::TooLarge { .. })
    ));
}

#[test]
fn garbage_never_panics() {
    let inputs = [
        "",
        " ",
        "not xml at all",
        "<",
        "<entry",
        "<entry xmlns='http://www.w3.org/2005/Atom'>",
        "<entry xmlns='http://www.w3.org/2005/Atom'><title>unclosed</entry>",
        "<entry xmlns='http://www.w3.org/2005/Atom'></entry><entry xmlns='http://www.w3.org/2005/Atom'/>",
        "<entry xmlns='http://www.w3.org/2005/Atom'>&bogus;</entry>",
        "<entry xmlns='http://www.w3.org/2005/Atom' xmlns:p='urn:p'><p:x p:y='1' p:y='2'/></entry>",
        "<entry xmlns='http://www.w3.org/2005/Atom'><title>\u{0}</title></entry>",
        "<?xml version='1.0'?><!DOCTYPE entry [<!ENTITY a 'aaaa'>]><entry xmlns='http://www.w3.org/2005/Atom'>&a;</entry>",
        "\u{feff}<entry xmlns='http://www.w3.org/2005/Atom'/>",
        "<entry xmlns='http://www.w3.org/2005/Atom'><link href='xmpp:?;;;;=%'/></entry>",
        "<entry xmlns='http://www.w3.org/2005/Atom'><author><uri>xmpp:\u{202e}@x</uri></author></entry>",
        "<entry xmlns='http://www.w3.org/2005/Atom'><updated>9999999999-01-01T00:00:00Z</updated></entry>",
        "<entry xmlns='http://www.w3.org/2005/Atom'><updated>2008-05-08T18:30:02.99999999999999999999Z</updated></entry>",
        "<entry xmlns='http://www.w3.org/2005/Atom'><updated>2008-05-08T18:30:60Z</updated></entry>",
        "<entry xmlns='http://www.w3.org/2005/Atom'><updated>2008-05-08T18:30:02+99:00</updated></entry>",
    ];
    for input in inputs {
        // Either an error or an entry that round-trips; never a panic.
        if let Ok(e) = Entry::from_xml_str(input) {
            let xml = e.to_xml_string().expect("serialises");
            assert_eq!(Entry::from_xml_str(&xml).expect("reparses"), e, "{input}");
        }
    }
    // Random bytes.
    let mut state: u32 = 0x1234_5678;
    for _ in 0..2000 {
        let len = (state % 200) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let alphabet = b"<>/='\" xmlnsentryAtom:&;#\x00\xff";
                alphabet[state as usize % alphabet.len()]
            })
            .collect();
        let text = String::from_utf8_lossy(&bytes);
        let _ = Entry::from_xml_str(&text);
    }
}
