package packet

// UserProperty is an MQTT 5 user property (a name/value pair; repeats allowed).
type UserProperty struct {
	Key   string
	Value string
}

// Properties holds MQTT 5 properties. A pointer field or a Has* flag tells
// whether a property was present, since zero is a meaningful value for many.
// Which properties a packet may carry is checked on decode [MQTT-2.2.2-2].
type Properties struct {
	PayloadFormat        *byte   // 0x01
	MessageExpiry        *uint32 // 0x02
	ContentType          string  // 0x03
	HasContentType       bool
	ResponseTopic        string // 0x08
	HasResponseTopic     bool
	CorrelationData      []byte   // 0x09
	SubscriptionIDs      []uint32 // 0x0B, repeatable in PUBLISH
	SessionExpiry        *uint32  // 0x11
	AssignedClientID     string   // 0x12
	HasAssignedClientID  bool
	ServerKeepAlive      *uint16 // 0x13
	AuthMethod           string  // 0x15
	HasAuthMethod        bool
	AuthData             []byte  // 0x16
	RequestProblemInfo   *byte   // 0x17
	WillDelay            *uint32 // 0x18
	RequestResponseInfo  *byte   // 0x19
	ResponseInfo         string  // 0x1A
	HasResponseInfo      bool
	ServerReference      string // 0x1C
	HasServerReference   bool
	ReasonString         string // 0x1F
	HasReasonString      bool
	ReceiveMaximum       *uint16        // 0x21
	TopicAliasMaximum    *uint16        // 0x22
	TopicAlias           *uint16        // 0x23
	MaximumQoS           *byte          // 0x24
	RetainAvailable      *byte          // 0x25
	User                 []UserProperty // 0x26
	MaximumPacketSize    *uint32        // 0x27
	WildcardSubAvailable *byte          // 0x28
	SubIDAvailable       *byte          // 0x29
	SharedSubAvailable   *byte          // 0x2A
}
