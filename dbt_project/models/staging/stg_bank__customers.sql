with

source as (

    select * from {{ source('bank', 'customers') }}

),

renamed as (

    select

        ----------  ids
        cast(customer_id as bigint) as customer_id,

        ---------- pii
        trim(full_name) as full_name,
        lower(trim(email)) as email,
        nullif(trim(phone), '') as phone,
        trim(national_id) as national_id,
        trim(street_address) as street_address,
        cast(birth_date as date) as birth_date,

        ---------- text
        lower(trim(segment)) as segment,
        trim(region) as region,

        ---------- numerics
        cast(annual_income as double) as annual_income,
        cast(credit_score as integer) as credit_score,

        ---------- dates
        cast(signup_date as date) as signup_date

    from source

),

final as (

    select * from renamed

)

select * from final
