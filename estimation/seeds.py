"""Seed data: class schemes of the common land-cover products and the coefficient
sets of the reference tables. Loaded by a data migration; editable afterwards.

Sources are in ``shared/reference/estimation.md`` (sections 1.2, 1.3, 4, 7) and
``data/README`` for MODIS.
"""

# (code, label, ecosystem)
CLCD = [
    ("1", "Cropland 耕地", "farmland"),
    ("2", "Forest 林地", "forest"),
    ("3", "Shrub 灌木", "forest"),
    ("4", "Grassland 草地", "grassland"),
    ("5", "Water 水体", "water"),
    ("6", "Snow/ice 冰雪", "other"),
    ("7", "Barren 裸地", "desert"),
    ("8", "Impervious 不透水面", "built_up"),
    ("9", "Wetland 湿地", "wetland"),
]
ESA_WORLDCOVER = [
    ("10", "Tree cover", "forest"),
    ("20", "Shrubland", "forest"),
    ("30", "Grassland", "grassland"),
    ("40", "Cropland", "farmland"),
    ("50", "Built-up", "built_up"),
    ("60", "Bare / sparse vegetation", "desert"),
    ("70", "Snow and ice", "other"),
    ("80", "Permanent water bodies", "water"),
    ("90", "Herbaceous wetland", "wetland"),
    ("95", "Mangroves", "wetland"),
    ("100", "Moss and lichen", "desert"),
]
GLOBELAND30 = [
    ("10", "Cultivated land 耕地", "farmland"),
    ("20", "Forest 林地", "forest"),
    ("30", "Grassland 草地", "grassland"),
    ("40", "Shrubland 灌木地", "forest"),
    ("50", "Wetland 湿地", "wetland"),
    ("60", "Water bodies 水体", "water"),
    ("70", "Tundra 苔原", "desert"),
    ("80", "Artificial surfaces 人造地表", "built_up"),
    ("90", "Bareland 裸地", "desert"),
    ("100", "Permanent snow and ice 冰川和永久积雪", "other"),
]
MODIS_IGBP = [
    ("0", "Water bodies", "water"),
    ("1", "Evergreen needleleaf forest", "forest"),
    ("2", "Evergreen broadleaf forest", "forest"),
    ("3", "Deciduous needleleaf forest", "forest"),
    ("4", "Deciduous broadleaf forest", "forest"),
    ("5", "Mixed forest", "forest"),
    ("6", "Closed shrublands", "forest"),
    ("7", "Open shrublands", "forest"),
    ("8", "Woody savannas", "forest"),
    ("9", "Savannas", "grassland"),
    ("10", "Grasslands", "grassland"),
    ("11", "Permanent wetlands", "wetland"),
    ("12", "Croplands", "farmland"),
    ("13", "Urban and built-up", "built_up"),
    ("14", "Cropland / natural vegetation mosaic", "farmland"),
    ("15", "Snow and ice", "other"),
    ("16", "Barren", "desert"),
]
# Third National Land Survey (三调): second-level codes; a first-level code (two
# digits) catches any second-level code not listed.
TNLS = [
    ("00", "湿地 Wetland", "wetland"),
    ("0303", "红树林地", "wetland"),
    ("0304", "森林沼泽", "wetland"),
    ("0306", "灌丛沼泽", "wetland"),
    ("0402", "沼泽草地", "wetland"),
    ("0603", "盐田", "wetland"),
    ("1105", "沿海滩涂", "wetland"),
    ("1106", "内陆滩涂", "wetland"),
    ("1108", "沼泽地", "wetland"),
    ("01", "耕地 Cropland", "farmland"),
    ("0101", "水田", "farmland"),
    ("0102", "水浇地", "farmland"),
    ("0103", "旱地", "farmland"),
    ("02", "园地 Orchards and plantations", "forest"),
    ("03", "林地 Forest land", "forest"),
    ("0301", "乔木林地", "forest"),
    ("0302", "竹林地", "forest"),
    ("0305", "灌木林地", "forest"),
    ("0307", "其他林地", "forest"),
    ("04", "草地 Grassland", "grassland"),
    ("0401", "天然牧草地", "grassland"),
    ("0403", "人工牧草地", "grassland"),
    ("0404", "其他草地", "grassland"),
    ("05", "商业服务业用地", "built_up"),
    ("06", "工矿用地", "built_up"),
    ("07", "住宅用地", "built_up"),
    ("08", "公共管理与公共服务用地", "built_up"),
    ("09", "特殊用地", "built_up"),
    ("10", "交通运输用地", "built_up"),
    ("11", "水域及水利设施用地 Water", "water"),
    ("1109", "水工建筑用地", "built_up"),
    ("1110", "冰川及永久积雪", "desert"),
    ("12", "其他土地 Other land", "other"),
    ("1201", "空闲地", "built_up"),
    ("1202", "设施农用地", "farmland"),
    ("1203", "田坎", "farmland"),
    ("1204", "盐碱地", "desert"),
    ("1205", "沙地", "desert"),
    ("1206", "裸土地", "desert"),
    ("1207", "裸岩石砾地", "desert"),
]

SCHEMES = [
    {
        "slug": "clcd",
        "name_zh": "中国逐年土地覆盖数据集（CLCD）",
        "name_en": "China Land Cover Dataset (CLCD)",
        "product": "CLCD, Yang & Huang 2021 (ESSD 13:3907), 30 m annual",
        "nodata_codes": ["0"],
        "mappings": CLCD,
    },
    {
        "slug": "esa-worldcover",
        "name_zh": "ESA WorldCover 10 米土地覆盖",
        "name_en": "ESA WorldCover 10 m",
        "product": "ESA WorldCover 2020 v100 / 2021 v200",
        "nodata_codes": ["0"],
        "mappings": ESA_WORLDCOVER,
    },
    {
        "slug": "globeland30",
        "name_zh": "GlobeLand30 全球地表覆盖",
        "name_en": "GlobeLand30",
        "product": "GlobeLand30, 30 m",
        "nodata_codes": ["255"],
        "mappings": GLOBELAND30,
    },
    {
        "slug": "modis-igbp",
        "name_zh": "MODIS 土地覆盖（IGBP 分类）",
        "name_en": "MODIS land cover (IGBP classes)",
        "product": "MODIS MCD12C1/MCD12Q1, IGBP type 1",
        "nodata_codes": ["255"],
        "mappings": MODIS_IGBP,
    },
    {
        "slug": "tnls",
        "name_zh": "第三次全国国土调查工作分类",
        "name_en": "Third National Land Survey classes",
        "product": "国土调查工作分类 (GB/T 21010-2017 based)",
        "nodata_codes": [],
        "mappings": TNLS,
    },
]

FANG_2007 = (
    "Fang J. et al. 2007, Terrestrial vegetation carbon sinks in China, 1981-2000. "
    "Sci. China D 50(9):1341-1350, doi:10.1007/s11430-007-0049-1"
)
METHODOLOGIES = [
    {
        "slug": "bijie-coefficient",
        "name_zh": "生态系统碳汇系数法（毕节研究）",
        "name_en": "Ecosystem sink coefficient method (Bijie study)",
        "kind": "flux",
        "is_default": True,
        "buffer_share": "0.1000",
        "uncertainty_deduction": "0.1000",
        "citation": (
            "Area of each ecosystem from GIS x sink coefficient (t C/ha/yr), as in the "
            "Bijie study (农村实用科技信息 2024(11)); classic Chinese land-use "
            "coefficient set, sink positive."
        ),
        "coefficients": [
            (
                "forest",
                "0.581",
                "t_c",
                "derived",
                FANG_2007 + ": 0.075 Pg C/a over ~129.7 Mha",
            ),
            (
                "farmland",
                "0.007",
                "t_c",
                "unverified",
                "Circulating value in Chinese LUCC carbon studies",
            ),
            (
                "grassland",
                "0.021",
                "t_c",
                "derived",
                FANG_2007 + ": 0.007 Pg C/a over ~3.3e8 ha",
            ),
            ("wetland", "0.253", "t_c", "unverified", "段晓男 et al. 2008"),
            (
                "water",
                "0.253",
                "t_c",
                "unverified",
                "段晓男 et al. 2008 (water/wetland)",
            ),
            ("desert", "0.005", "t_c", "unverified", "赖力 2010"),
            (
                "built_up",
                "0",
                "t_c",
                "verified",
                "Built-up land is not counted as a sink",
            ),
            ("other", "0", "t_c", "verified", "Not counted as a sink"),
        ],
    },
    {
        "slug": "guangdong-2018-inventory",
        "name_zh": "广东省 2018 年土地利用碳汇强度",
        "name_en": "Guangdong 2018 LULUCF inventory intensities",
        "kind": "flux",
        "is_default": False,
        "buffer_share": "0.1000",
        "uncertainty_deduction": "0.1000",
        "citation": (
            "吕国玮 et al. 2023, 地理学报 78(3):640, Table 7 "
            "(t CO2/ha/yr, sink positive)"
        ),
        "coefficients": [
            ("forest", "3.9", "t_co2", "verified", "吕国玮 et al. 2023, Table 7"),
            ("wetland", "0.6", "t_co2", "verified", "吕国玮 et al. 2023, Table 7"),
            (
                "water",
                "0.6",
                "t_co2",
                "verified",
                "吕国玮 et al. 2023, Table 7 (wetland)",
            ),
            ("farmland", "-0.1", "t_co2", "verified", "吕国玮 et al. 2023, Table 7"),
            ("grassland", "0.2", "t_co2", "verified", "吕国玮 et al. 2023, Table 7"),
            ("built_up", "-0.6", "t_co2", "verified", "吕国玮 et al. 2023, Table 7"),
            ("desert", "0", "t_co2", "unverified", "Not in the table; taken as 0"),
            ("other", "0", "t_co2", "unverified", "Not in the table; taken as 0"),
        ],
    },
]


def load_seeds(*, scheme_model, mapping_model, methodology_model, coefficient_model):
    """Create the seeded schemes and methodologies that are missing (models may
    be historical ones, from a migration)."""
    for spec in SCHEMES:
        scheme, _ = scheme_model.objects.update_or_create(
            slug=spec["slug"],
            defaults={
                "name_zh": spec["name_zh"],
                "name_en": spec["name_en"],
                "product": spec["product"],
                "nodata_codes": spec["nodata_codes"],
            },
        )
        for code, label, ecosystem in spec["mappings"]:
            mapping_model.objects.update_or_create(
                scheme=scheme,
                code=code,
                defaults={"label": label, "ecosystem": ecosystem},
            )
    for spec in METHODOLOGIES:
        if methodology_model.objects.filter(slug=spec["slug"]).exists():
            continue
        methodology = methodology_model.objects.create(
            slug=spec["slug"],
            version=1,
            name_zh=spec["name_zh"],
            name_en=spec["name_en"],
            kind=spec["kind"],
            citation=spec["citation"],
            is_default=spec["is_default"],
            buffer_share=spec["buffer_share"],
            uncertainty_deduction=spec["uncertainty_deduction"],
        )
        for ecosystem, value, unit, status, citation in spec["coefficients"]:
            coefficient_model.objects.create(
                methodology=methodology,
                ecosystem=ecosystem,
                pool="",
                value=value,
                unit=unit,
                basis="per_ha_year",
                sign="sink_positive",
                citation=citation,
                status=status,
            )
