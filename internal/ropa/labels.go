package ropa

// builtInZH is the Chinese description of each built-in purpose (privguard.DefaultPurposes
// has the English one). A built-in purpose missing here is reported as a gap of its
// description.zh, so that a purpose added to the defaults is noticed.
var builtInZH = map[string]string{
	"essential.service":                 "提供个人信息主体所请求的服务",
	"essential.storage":                 "存储依法必须保存的数据（法定保存期限）",
	"essential.security":                "安全保障、反欺诈与事件响应",
	"essential.pricing":                 "向个人提供的价格与交易条件",
	"essential.legal_claims":            "提起、行使或抗辩法律主张",
	"analytics.reporting":               "服务使用情况的汇总统计",
	"analytics.ab_testing":              "功能与信息的 A/B 测试",
	"marketing.profiling":               "标签、分群、RFM 评分与兴趣推断（用户画像）",
	"marketing.communications.sms":      "营销短信",
	"marketing.communications.email":    "营销邮件",
	"marketing.communications.push":     "应用营销推送",
	"marketing.communications.wechat":   "微信营销消息",
	"marketing.advertising.first_party": "在本公司自有渠道投放的定向广告",
	"marketing.advertising.third_party": "与广告平台共享的相似人群与自定义人群",
	"personalize.recommendation":        "个性化推荐",
	"third_party.sharing":               "向其他个人信息处理者提供个人信息",
	"cross_border.transfer":             "向中华人民共和国境外提供个人信息",
	"sensitive.processing":              "处理敏感个人信息",
}

// PurposeZH returns the Chinese description of a built-in purpose, or "" for another.
func PurposeZH(purpose string) string { return builtInZH[purpose] }

// label is a bilingual heading or value.
type label struct{ zh, en string }

func (l label) in(lang string) string {
	if lang == "zh" {
		return l.zh
	}
	return l.en
}

// heading is "zh / en", as the CSV's columns are headed.
func (l label) heading() string { return l.zh + " / " + l.en }

// Labels of the record's fields, for the CSV headings and the HTML page.
var (
	lActivity        = label{"处理活动", "Processing activity"}
	lPurpose         = label{"目的", "Purpose"}
	lBuiltIn         = label{"内置目的", "Built-in purpose"}
	lDeclaredBy      = label{"配置来源", "Declared by"}
	lBasisPIPL       = label{"法律依据（PIPL）", "Legal basis (PIPL)"}
	lBasisGDPR       = label{"法律依据（GDPR）", "Legal basis (GDPR)"}
	lSeparate        = label{"单独同意", "Separate consent"}
	lSubjects        = label{"个人信息主体类别", "Categories of data subjects"}
	lCategories      = label{"个人信息种类", "Categories of personal data"}
	lSensitive       = label{"敏感个人信息", "Sensitive personal information"}
	lProhibited      = label{"禁止使用的种类", "Prohibited categories"}
	lTouched         = label{"实际涉及的数据", "Data its routes and stores hold"}
	lSources         = label{"个人信息来源", "Sources"}
	lRecipient       = label{"接收方", "Recipient"}
	lRole            = label{"接收方身份", "Recipient role"}
	lCountry         = label{"接收方所在国家或地区", "Recipient country"}
	lContact         = label{"接收方联系方式", "Recipient contact"}
	lProvided        = label{"提供的个人信息种类", "Categories provided"}
	lCrossBorder     = label{"出境", "Cross-border"}
	lAbroad          = label{"接收方在境外", "Recipient abroad"}
	lMechanism       = label{"出境合规机制", "Transfer mechanism"}
	lReference       = label{"机制编号", "Mechanism reference"}
	lMechanismDate   = label{"机制生效日期", "Mechanism date"}
	lMechanismEnd    = label{"机制失效日期", "Mechanism expires"}
	lRetention       = label{"保存期限", "Retention"}
	lRetentionRules  = label{"保存规则", "Retention rules"}
	lValidity        = label{"同意有效期", "Consent validity"}
	lSealed          = label{"加密字段（保险库）", "Sealed by the vault"}
	lAtRest          = label{"存储加密", "Encryption at rest"}
	lMasked          = label{"掩码展示", "Masked"}
	lMinimised       = label{"最小必要删减", "Dropped (minimum necessary)"}
	lDecisionLog     = label{"决策日志", "Decision log"}
	lMeasures        = label{"其他安全措施", "Other security measures"}
	lScale           = label{"规模", "Scale"}
	lScenario        = label{"业务场景", "Scenario"}
	lSystems         = label{"系统", "Systems"}
	lOwner           = label{"负责人", "Owner"}
	lEntrusted       = label{"委托处理", "Entrusted"}
	lShared          = label{"共享", "Shared"}
	lTransferred     = label{"转让", "Transferred"}
	lDisclosed       = label{"公开披露", "Publicly disclosed"}
	lAutomated       = label{"自动化决策", "Automated decision-making"}
	lLargeScale      = label{"大规模处理", "Large scale"}
	lDirectMarketing = label{"直接营销", "Direct marketing"}
	lPersonalised    = label{"个性化", "Personalised"}
	lRoutes          = label{"执行路由", "Enforcing routes"}
	lController      = label{"个人信息处理者", "Controller"}
	lControllerRep   = label{"代表", "Representative"}
	lDPO             = label{"个人信息保护负责人", "Data protection officer"}
	lDPOContact      = label{"个人信息保护负责人联系方式", "DPO contact"}
	lDPOFiled        = label{"负责人报送", "DPO filed with"}
	lGaps            = label{"缺失项", "Not declared"}
	lGenerated       = label{"生成时间", "Generated"}
	lRegime          = label{"适用法律", "Regime"}
	lTitle           = label{"个人信息处理活动记录", "Record of processing activities"}
	lStores          = label{"数据存储", "Data stores"}
	lType            = label{"类型", "Type"}
	lCategory        = label{"种类", "Category"}
	lDescription     = label{"说明", "Description"}
	lNone            = label{"无", "none"}
	lYes             = label{"是", "yes"}
	lNo              = label{"否", "no"}
	lNotDeclared     = label{"未声明", "not declared"}
	lUntilWithdrawn  = label{"撤回前有效", "until withdrawn"}
	lProcessor       = label{"受托人", "processor"}
	lHandler         = label{"其他个人信息处理者", "handler"}
	lJoint           = label{"共同处理者", "joint controller"}
	lRecordGaps      = label{"记录缺失项", "Gaps in the record"}
	lActivityGaps    = label{"本活动缺失项", "Not declared for this activity"}
)

// roleLabel is the label of a recipient role.
func roleLabel(role string) label {
	switch role {
	case "handler":
		return lHandler
	case "joint":
		return lJoint
	}
	return lProcessor
}

// yesNo is the label of b.
func yesNo(b bool) label {
	if b {
		return lYes
	}
	return lNo
}
