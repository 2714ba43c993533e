package packet

import "fmt"

// errTooLong is returned when a string or binary field cannot be encoded in
// its two-byte length.
func errTooLong(t Type, what string, n int) error {
	return fmt.Errorf("encode %s: %s is %d bytes, over 65535", t, what, n)
}

// propsSize is the encoded size of p's properties, without the property
// length in front. It allocates nothing.
func propsSize(t Type, p *Properties) (int, error) {
	if p == nil {
		return 0, nil
	}
	n := 0
	str := func(ok bool, what string, l int) error {
		if !ok {
			return nil
		}
		if l > 65535 {
			return errTooLong(t, what, l)
		}
		n += 3 + l
		return nil
	}
	if p.PayloadFormat != nil {
		n += 2
	}
	if p.MessageExpiry != nil {
		n += 5
	}
	if err := str(p.HasContentType, "Content Type", len(p.ContentType)); err != nil {
		return 0, err
	}
	if err := str(p.HasResponseTopic, "Response Topic", len(p.ResponseTopic)); err != nil {
		return 0, err
	}
	if err := str(p.CorrelationData != nil, "Correlation Data", len(p.CorrelationData)); err != nil {
		return 0, err
	}
	for _, id := range p.SubscriptionIDs {
		if id > MaxRemainingLength {
			return 0, fmt.Errorf("encode %s: Subscription Identifier %d over %d", t, id, MaxRemainingLength)
		}
		n += 1 + varintLen(int(id))
	}
	if p.SessionExpiry != nil {
		n += 5
	}
	if err := str(p.HasAssignedClientID, "Assigned Client Identifier", len(p.AssignedClientID)); err != nil {
		return 0, err
	}
	if p.ServerKeepAlive != nil {
		n += 3
	}
	if err := str(p.HasAuthMethod, "Authentication Method", len(p.AuthMethod)); err != nil {
		return 0, err
	}
	if err := str(p.AuthData != nil, "Authentication Data", len(p.AuthData)); err != nil {
		return 0, err
	}
	if p.RequestProblemInfo != nil {
		n += 2
	}
	if p.WillDelay != nil {
		n += 5
	}
	if p.RequestResponseInfo != nil {
		n += 2
	}
	if err := str(p.HasResponseInfo, "Response Information", len(p.ResponseInfo)); err != nil {
		return 0, err
	}
	if err := str(p.HasServerReference, "Server Reference", len(p.ServerReference)); err != nil {
		return 0, err
	}
	if err := str(p.HasReasonString, "Reason String", len(p.ReasonString)); err != nil {
		return 0, err
	}
	if p.ReceiveMaximum != nil {
		n += 3
	}
	if p.TopicAliasMaximum != nil {
		n += 3
	}
	if p.TopicAlias != nil {
		n += 3
	}
	if p.MaximumQoS != nil {
		n += 2
	}
	if p.RetainAvailable != nil {
		n += 2
	}
	for _, u := range p.User {
		if len(u.Key) > 65535 || len(u.Value) > 65535 {
			return 0, errTooLong(t, "User Property", max(len(u.Key), len(u.Value)))
		}
		n += 5 + len(u.Key) + len(u.Value)
	}
	if p.MaximumPacketSize != nil {
		n += 5
	}
	if p.WildcardSubAvailable != nil {
		n += 2
	}
	if p.SubIDAvailable != nil {
		n += 2
	}
	if p.SharedSubAvailable != nil {
		n += 2
	}
	return n, nil
}

// appendProps appends the property length l (from propsSize) and p's
// properties in identifier order.
func appendProps(dst []byte, p *Properties, l int) []byte {
	dst = appendVarint(dst, l)
	if p == nil {
		return dst
	}
	if p.PayloadFormat != nil {
		dst = append(dst, propPayloadFormat, *p.PayloadFormat)
	}
	if p.MessageExpiry != nil {
		dst = appendU32(append(dst, propMessageExpiry), *p.MessageExpiry)
	}
	if p.HasContentType {
		dst = appendStr(append(dst, propContentType), p.ContentType)
	}
	if p.HasResponseTopic {
		dst = appendStr(append(dst, propResponseTopic), p.ResponseTopic)
	}
	if p.CorrelationData != nil {
		dst = appendBin(append(dst, propCorrelationData), p.CorrelationData)
	}
	for _, id := range p.SubscriptionIDs {
		dst = appendVarint(append(dst, propSubscriptionID), int(id))
	}
	if p.SessionExpiry != nil {
		dst = appendU32(append(dst, propSessionExpiry), *p.SessionExpiry)
	}
	if p.HasAssignedClientID {
		dst = appendStr(append(dst, propAssignedClientID), p.AssignedClientID)
	}
	if p.ServerKeepAlive != nil {
		dst = appendU16(append(dst, propServerKeepAlive), *p.ServerKeepAlive)
	}
	if p.HasAuthMethod {
		dst = appendStr(append(dst, propAuthMethod), p.AuthMethod)
	}
	if p.AuthData != nil {
		dst = appendBin(append(dst, propAuthData), p.AuthData)
	}
	if p.RequestProblemInfo != nil {
		dst = append(dst, propRequestProblemInfo, *p.RequestProblemInfo)
	}
	if p.WillDelay != nil {
		dst = appendU32(append(dst, propWillDelay), *p.WillDelay)
	}
	if p.RequestResponseInfo != nil {
		dst = append(dst, propRequestResponseInfo, *p.RequestResponseInfo)
	}
	if p.HasResponseInfo {
		dst = appendStr(append(dst, propResponseInfo), p.ResponseInfo)
	}
	if p.HasServerReference {
		dst = appendStr(append(dst, propServerReference), p.ServerReference)
	}
	if p.HasReasonString {
		dst = appendStr(append(dst, propReasonString), p.ReasonString)
	}
	if p.ReceiveMaximum != nil {
		dst = appendU16(append(dst, propReceiveMaximum), *p.ReceiveMaximum)
	}
	if p.TopicAliasMaximum != nil {
		dst = appendU16(append(dst, propTopicAliasMaximum), *p.TopicAliasMaximum)
	}
	if p.TopicAlias != nil {
		dst = appendU16(append(dst, propTopicAlias), *p.TopicAlias)
	}
	if p.MaximumQoS != nil {
		dst = append(dst, propMaximumQoS, *p.MaximumQoS)
	}
	if p.RetainAvailable != nil {
		dst = append(dst, propRetainAvailable, *p.RetainAvailable)
	}
	for _, u := range p.User {
		dst = appendStr(appendStr(append(dst, propUser), u.Key), u.Value)
	}
	if p.MaximumPacketSize != nil {
		dst = appendU32(append(dst, propMaximumPacketSize), *p.MaximumPacketSize)
	}
	if p.WildcardSubAvailable != nil {
		dst = append(dst, propWildcardSubAvailable, *p.WildcardSubAvailable)
	}
	if p.SubIDAvailable != nil {
		dst = append(dst, propSubIDAvailable, *p.SubIDAvailable)
	}
	if p.SharedSubAvailable != nil {
		dst = append(dst, propSharedSubAvailable, *p.SharedSubAvailable)
	}
	return dst
}
